"""Store outage: with Valkey stopped, everything that needs the store fails closed (503,
temporarily_unavailable; a 503 page for the browser), what does not need it keeps serving, and
the server recovers by itself when Valkey is back on the same port and AOF directory."""
from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import oauth as oauth_helpers
from tests.helpers.outage import RECOVERY_TIMEOUT, wait_until_ready
from tests.helpers.poll import eventually
from tests.helpers.ports import free_port
from tests.helpers.sso import (
    App,
    add_app,
    add_user,
    begin,
    csrf_of,
    is_error_page,
    pkce,
    query_of,
    tokens_for,
)
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.config import Settings


@dataclass
class Setup:
    client: TestClient
    store: EmbeddedValkey
    app: App
    service: oauth_helpers.Registered
    issued: dict[str, Any]
    login_request: str  # a pending login, its form shown before the outage
    login_csrf: str


@pytest.fixture
async def setup(make_client: Any, settings: Settings, tmp_path: Path) -> AsyncIterator[Setup]:
    store = EmbeddedValkey(tmp_path / "valkey", port=free_port())  # AOF on, like production
    store.start()
    client = await make_client(settings, redis_url=store.url)
    app = await add_app(client, "web", public=False)
    service = await oauth_helpers.add_client(client, "svc")
    await add_user(client)
    issued = await tokens_for(client, app)
    _, resp = await begin(client, app, prompt="login")
    login = await client.get(resp.headers["Location"])
    request_id = query_of(resp.headers["Location"])["request"]
    s = Setup(client, store, app, service, issued, request_id, csrf_of(await login.text()))
    yield s
    s.store.stop()  # the one running now: the test may have restarted it


def restart(store: EmbeddedValkey) -> EmbeddedValkey:
    """The same port and data directory: what an operator's restart does."""
    again = EmbeddedValkey(store.data_dir, port=store.port)
    again.start()
    return again


async def assert_json_503(resp: Any) -> None:
    body = await resp.json()
    assert resp.status == 503, body
    assert body["error"] == "temporarily_unavailable"
    assert resp.headers["Retry-After"] and resp.headers["Cache-Control"] == "no-store"


async def assert_page_503(resp: Any) -> None:
    html = await resp.text()
    assert resp.status == 503, html
    assert resp.content_type == "text/html" and is_error_page(html)
    assert "Traceback" not in html and "redis" not in html.lower()


async def api_calls(s: Setup) -> list[tuple[str, Any]]:
    c, app, svc = s.client, s.app, s.service
    refresh = {"grant_type": "refresh_token", "refresh_token": s.issued["refresh_token"]}
    bearer = {"Authorization": "Bearer " + s.issued["access_token"]}
    return [
        ("client_credentials", c.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=svc.basic)),
        ("refresh", c.post("/oauth2/token", data=refresh, headers=app.auth())),
        ("code", c.post("/oauth2/token", data={"grant_type": "authorization_code", "code": "x" * 43,
                                                 "redirect_uri": app.redirect_uri, "code_verifier": pkce()[0]},
                        headers=app.auth())),
        ("revoke", c.post("/oauth2/revoke", data={"token": s.issued["access_token"]}, headers=app.auth())),
        ("introspect", c.post("/oauth2/introspect", data={"token": s.issued["access_token"]}, headers=svc.basic)),
        ("userinfo", c.get("/oauth2/userinfo", headers=bearer)),
    ]


async def test_everything_that_needs_the_store_fails_closed_then_recovers(setup: Setup) -> None:
    """RFC 6749 §4.1.2.1 / §5.2 temporarily_unavailable; RFC 9700 §4.x fail closed: no token,
    no introspection verdict, no sign-in without the store."""
    s = setup
    s.store.stop()
    for name, call in await api_calls(s):
        resp = await call
        try:
            await assert_json_503(resp)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc

    _, resp = await begin(s.client, s.app)
    await assert_page_503(resp)
    await assert_page_503(await s.client.get("/login", params={"request": s.login_request}))
    await assert_page_503(await s.client.post("/login", data={
        "request": s.login_request, "csrf_token": s.login_csrf, "username": "alice",
        "password": oauth_helpers.PASSWORD}, allow_redirects=False))
    await assert_page_503(await s.client.get("/oauth2/logout", params={"id_token_hint": s.issued["id_token"]}))

    # what needs no store keeps serving
    for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/healthz"):
        assert (await s.client.get(path)).status == 200, path
    ready = await s.client.get("/readyz")
    assert ready.status == 503 and "store unreachable" in (await ready.json())["reasons"]

    s.store = restart(s.store)
    await wait_until_ready(s.client)
    # recovered, no restart of tokensrv: the refresh token issued before the outage still works
    status, body, _ = await oauth_helpers.post(
        s.client, "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": s.issued["refresh_token"]},
        s.app.auth())
    assert status == 200, body
    status, body, _ = await oauth_helpers.token(s.client, s.service, grant_type="client_credentials")
    assert status == 200, body
    assert (await oauth_helpers.introspect(s.client, s.service, body["access_token"]))["active"] is True


async def test_a_frozen_store_is_an_unreachable_store(setup: Setup) -> None:
    """SIGSTOP keeps every connection open and answers nothing. The client cache must not go on
    issuing tokens from records read before the freeze: once its subscription has been silent for
    MAX_SILENCE, every store-backed request fails closed within the store timeout, and all
    recovers by itself after SIGCONT."""
    s = setup
    status, body, _ = await oauth_helpers.token(s.client, s.service, grant_type="client_credentials")
    assert status == 200, body  # the record is cached now
    pid = s.store.process.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        async def refused() -> bool:
            return (await oauth_helpers.token(s.client, s.service, grant_type="client_credentials"))[0] != 200

        await eventually(refused, "no more tokens issued from records cached before the freeze",
                         timeout=RECOVERY_TIMEOUT)  # MAX_SILENCE is seconds
        for name, call in await api_calls(s):
            resp = await call  # answered, not hung: the store timeout bounds the wait
            try:
                await assert_json_503(resp)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        ready = await s.client.get("/readyz")
        assert ready.status == 503
        assert {"store unreachable", "not following client changes"} <= set((await ready.json())["reasons"])
        assert (await s.client.get("/.well-known/jwks.json")).status == 200  # needs no store
    finally:
        os.kill(pid, signal.SIGCONT)
    await wait_until_ready(s.client)
    status, body, _ = await oauth_helpers.token(s.client, s.service, grant_type="client_credentials")
    assert status == 200, body
    status, body, _ = await oauth_helpers.post(
        s.client, "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": s.issued["refresh_token"]},
        s.app.auth())
    assert status == 200, body
