"""The example orders service as a real process beside a real tokensrv: it verifies every request
with no request to tokensrv, answers RFC 6750 challenges, and refuses a token once revoked."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.live import LiveServer, wait_ready
from tests.helpers.poll import eventually
from tests.helpers.ports import free_port
from tests.helpers.verify_live import DEADLINE, Tokensrv, register

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def orders(live_server: LiveServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path / "orders.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.orders", "--issuer", live_server.url, "--port", str(port),
             "--redis-url", live_server.redis_url],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)  # /readyz: keys loaded, revocation mirror connected
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
async def tokensrv(live_server: LiveServer) -> AsyncIterator[Tokensrv]:
    async with aiohttp.ClientSession() as session:
        yield await register(live_server, session)


def issuer_requests(orders_url: str) -> float:
    """What the service itself counts: every HTTP request its verifier made to tokensrv."""
    with urllib.request.urlopen(orders_url + "/metrics", timeout=5) as resp:
        families = text_string_to_metric_families(resp.read().decode())
    return sum(s.value for f in families if f.name == "tokensrv_verifier_issuer_requests"
               for s in f.samples if s.name.endswith("_total"))


async def test_verified_requests_cost_tokensrv_nothing(orders: str, tokensrv: Tokensrv) -> None:
    token = (await tokensrv.user_login("orders:read"))["access_token"]
    session = tokensrv.session
    before = issuer_requests(orders)
    assert before == 2  # discovery and the JWKS, at start
    for _ in range(50):
        async with session.get(orders + "/orders", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
    assert issuer_requests(orders) == before


async def test_rfc6750_answers_over_http(orders: str, tokensrv: Tokensrv) -> None:
    token = (await tokensrv.user_login("orders:read"))["access_token"]
    session = tokensrv.session
    async with session.get(orders + "/orders") as resp:
        assert (resp.status, resp.headers["WWW-Authenticate"]) == (401, 'Bearer realm="orders"')
    async with session.post(orders + "/orders", json={"item": "tea", "quantity": 1},
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 403
        assert resp.headers["WWW-Authenticate"] == \
            'Bearer realm="orders", error="insufficient_scope", scope="orders:write"'
        assert (await resp.json())["error"] == "insufficient_scope"
    async with session.get(orders + "/orders", headers={"Authorization": f"Bearer {token}x"}) as resp:
        assert (resp.status, resp.headers["WWW-Authenticate"]) == (401, 'Bearer realm="orders", error="invalid_token"')


async def test_a_token_revoked_at_tokensrv_is_refused_by_the_service(orders: str, tokensrv: Tokensrv) -> None:
    token = (await tokensrv.user_login("orders:read"))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with tokensrv.session.get(orders + "/orders", headers=headers) as resp:
        assert resp.status == 200
    await tokensrv.revoke(token)

    async def refused() -> bool:
        async with tokensrv.session.get(orders + "/orders", headers=headers) as resp:
            return resp.status == 401
    await eventually(refused, "the service refuses the revoked token", timeout=DEADLINE)
