"""The example orders service (examples/orders) behind tokensrv.verify, with an issuer and a first-party app:
fixtures."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from examples.orders.app import create_app as create_orders
from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.oauth import Registered, add_client, add_user
from tests.helpers.verify import AUDIENCE, start_issuer
from tokensrv.config import Settings
from tokensrv.verify import TokenVerifier


@pytest.fixture
async def issuer(aiohttp_client: Any, redis: Redis, clock: FakeClock, settings: Settings) -> TestClient:
    return await start_issuer(aiohttp_client, clock, settings)


@pytest.fixture
async def app(issuer: TestClient) -> Registered:
    registered = await add_client(issuer, "web", grant_types=("password",), first_party=True,
                                  scopes=("orders:read", "orders:write"), audience=AUDIENCE)
    await add_user(issuer, "alice", roles=("clerk",))
    return registered


@pytest.fixture
async def orders(aiohttp_client: Any, issuer: TestClient, clock: FakeClock, redis_url: str) -> TestClient:
    registry = CollectorRegistry()
    verifier = TokenVerifier(provider_of(issuer).settings.issuer, AUDIENCE, redis_url, clock=clock,
                             registry=registry)
    client: TestClient = await aiohttp_client(create_orders(verifier, registry))
    return client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
