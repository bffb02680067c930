"""Error bodies and logs never leak; a store that cannot be reached fails closed with 503."""
from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from tests.helpers.app import provider_of
from tests.helpers.oauth import (
    PASSWORD,
    add_app,
    add_client,
    add_user,
    basic,
    login,
    post,
)
from tests.helpers.ports import free_port
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.server.app import create_app
from tokensrv.store import keyspace

# a traceback, an exception class name, a file path, or the store's own words
LEAKS = re.compile(r"Traceback|File \"|\.py\b|[a-z]Error\b|Exception|[Rr]edis|[Vv]alkey|/work|/tmp|/home|/usr")


def assert_clean(body: dict, *secrets: str) -> None:
    assert set(body) == {"error", "error_description"}, body
    text = " ".join(body.values())
    assert not LEAKS.search(text), text
    for secret in secrets:
        assert secret not in text


async def test_no_error_body_or_log_line_holds_a_secret_a_token_or_internals(client, caplog):
    caplog.set_level(logging.DEBUG)
    svc = await add_client(client, "svc", scopes=("read",))
    app = await add_app(client)
    await add_user(client)
    issued = await login(client, app)
    refresh_token, access_token = issued["refresh_token"], issued["access_token"]
    secrets = (svc.secret, app.secret, PASSWORD, refresh_token, access_token)
    attempts = [
        ("/oauth2/token", {"grant_type": "client_credentials"}, basic("svc", svc.secret + "x")),
        ("/oauth2/token", {"grant_type": "client_credentials", "client_id": "svc", "client_secret": app.secret}, {}),
        ("/oauth2/token", {"grant_type": "password", "username": "alice", "password": PASSWORD + "x"}, app.basic),
        ("/oauth2/token", {"grant_type": "password", "username": PASSWORD, "password": PASSWORD}, app.basic),
        ("/oauth2/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}, svc.basic),
        ("/oauth2/token", {"grant_type": "refresh_token", "refresh_token": refresh_token[:-2] + "AA"}, basic("x", "y")),
        ("/oauth2/token", {"grant_type": "client_credentials", "scope": access_token}, svc.basic),
        ("/oauth2/token", {"grant_type": access_token}, svc.basic),
        ("/oauth2/revoke", {"token": refresh_token}, svc.basic),
        ("/oauth2/revoke", {"token": access_token}, {"Authorization": "Bearer " + access_token}),
        ("/oauth2/introspect", {"token": access_token, "client_id": "svc", "client_secret": PASSWORD}, {}),
    ]
    for path, form, headers in attempts:
        status, body, _ = await post(client, path, form, headers)
        assert 400 <= status < 500, (path, body)
        assert_clean(body, *secrets)
    resp = await client.post("/oauth2/token", data=b"grant_type=" + access_token.encode() + b"&x=" + b"a" * 70000,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 413
    assert_clean(await resp.json(), *secrets)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for secret in secrets:
        assert secret not in logged


async def test_an_unexpected_failure_is_a_bare_server_error(client, redis, caplog):
    caplog.set_level(logging.ERROR)
    await redis.set(keyspace.client("svc"), "{not json")  # a damaged record
    status, body, headers = await post(client, "/oauth2/token", {"grant_type": "client_credentials"},
                                       basic("svc", "secret"))
    assert status == 500 and body["error"] == "server_error" and headers["Cache-Control"] == "no-store"
    assert_clean(body)
    assert any(r.exc_info for r in caplog.records)  # the traceback goes to the log instead


async def unreachable_client(aiohttp_client, settings, redis_url: str):
    app = create_app(dataclasses.replace(settings, redis_url=redis_url), run_schedule=False)
    return await aiohttp_client(app)


async def assert_unavailable(http, form: dict, headers: dict) -> None:
    for path in ("/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"):
        status, body, resp_headers = await post(http, path, form, headers)
        assert (status, body["error"]) == (503, "temporarily_unavailable"), (path, body)
        assert resp_headers["Retry-After"] and resp_headers["Cache-Control"] == "no-store"
        assert_clean(body)


async def test_a_store_that_went_away_fails_closed(aiohttp_client, settings, tmp_path, clock):
    """A running server whose Valkey stops: every endpoint that needs the store answers 503,
    introspection included (never active: true from a deny-list it cannot read)."""
    valkey = EmbeddedValkey(tmp_path / "valkey", port=free_port(), appendonly=False)
    valkey.start()
    try:
        http = await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=valkey.url),
                                               clock=clock, run_schedule=False))
        await provider_of(http).keys.tick()
        app = await add_app(http)
        await add_user(http)
        issued = await login(http, app)
        # a password login needs the store (rate limits, the user); so do revocation and
        # introspection (the deny-list), whatever the process may have cached about the client
        form = {"grant_type": "password", "username": "alice", "password": PASSWORD,
                "token": issued["access_token"]}
    finally:
        valkey.stop()
    await assert_unavailable(http, form, app.basic)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:{port}/0", "unix:///nonexistent/valkey.sock"])
async def test_a_store_never_reachable_fails_closed(client, aiohttp_client, settings, url):
    http = await unreachable_client(aiohttp_client, settings, url.format(port=free_port()))
    await assert_unavailable(http, {"grant_type": "client_credentials", "token": "x"}, basic("svc", "secret"))
    assert (await http.get("/readyz")).status == 503
    assert (await http.get("/.well-known/jwks.json")).status == 200  # keys are files: still served
