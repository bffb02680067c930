"""The aiohttp middleware and `require`, through the example orders service: RFC 6750 answers."""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.clock import FakeClock
from tests.helpers.oauth import (
    Registered,
    login,
    post,
)
from tests.helpers.orders import bearer
from tests.helpers.ports import free_port
from tests.helpers.verify import (
    FunctionFetcher,
    Signer,
    claims_for,
    make_verifier,
    wait_for_revocation,
)
from tokensrv.verify import TokenVerifier
from tokensrv.verify.jws import b64url_decode
from tokensrv.verify.middleware import VERIFIER, claims_of, require, setup

Client = Callable[..., Awaitable[TestClient]]


async def answer(resp: Any) -> tuple[int, str | None, dict[str, Any]]:
    return resp.status, resp.headers.get("WWW-Authenticate"), await resp.json()


async def test_a_valid_token_reaches_the_handler(issuer: TestClient, app: Registered, orders: TestClient) -> None:
    token = (await login(issuer, app, scope="orders:read orders:write"))["access_token"]
    resp = await orders.post("/orders", json={"item": "tea", "quantity": 2}, headers=bearer(token))
    assert resp.status == 201
    resp = await orders.get("/orders", headers=bearer(token))
    assert resp.status == 200
    assert [(o["item"], o["quantity"]) for o in (await resp.json())["orders"]] == [("tea", 2)]


async def test_a_bad_order_is_a_bad_request(issuer: TestClient, app: Registered, orders: TestClient) -> None:
    token = (await login(issuer, app, scope="orders:write"))["access_token"]
    for body in ({"item": "tea"}, {"item": "", "quantity": 1}, {"item": "tea", "quantity": True}, ["tea", 1]):
        resp = await orders.post("/orders", json=body, headers=bearer(token))
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"
    resp = await orders.post("/orders", data=b"not json", headers=bearer(token))
    assert resp.status == 400


async def test_no_token_gets_a_bare_challenge(orders: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic YWxpY2U6c2VjcmV0"}):
        status, challenge, body = await answer(await orders.get("/orders", headers=headers))
        assert (status, challenge) == (401, 'Bearer realm="orders"')  # RFC 6750 §3.1: no error code
        assert body["error"] == "unauthorized"


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b"])
async def test_a_malformed_authorization_header_is_a_bad_request(orders: TestClient, value: str) -> None:
    status, challenge, body = await answer(await orders.get("/orders", headers={"Authorization": value}))
    assert (status, challenge, body["error"]) == (400, 'Bearer realm="orders", error="invalid_request"',
                                                  "invalid_request")


async def test_two_authorization_headers_are_a_bad_request(orders: TestClient) -> None:
    resp = await orders.get("/orders", headers=[("Authorization", "Bearer a.b.c"), ("Authorization", "Bearer x.y.z")])
    assert resp.status == 400


async def test_an_invalid_token_is_refused_without_saying_more(orders: TestClient, issuer: TestClient,
                                                               app: Registered, clock: FakeClock) -> None:
    garbage = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
    expired = (await login(issuer, app, scope="orders:read"))["access_token"]
    clock.advance(900 + 31)
    for token in (garbage, expired, expired[:-4] + "AAAA"):
        status, challenge, body = await answer(await orders.get("/orders", headers=bearer(token)))
        assert (status, challenge) == (401, 'Bearer realm="orders", error="invalid_token"')
        assert body["error"] == "invalid_token" and set(body) == {"error", "error_description"}
        assert token not in json.dumps(body) and "kid" not in body["error_description"]


def jti_of(token: str) -> str:
    return str(json.loads(b64url_decode(token.split(".")[1]))["jti"])


async def test_a_revoked_token_is_refused(orders: TestClient, issuer: TestClient, app: Registered) -> None:
    token = (await login(issuer, app, scope="orders:read"))["access_token"]
    assert (await orders.get("/orders", headers=bearer(token))).status == 200
    status, _, _ = await post(issuer, "/oauth2/revoke", {"token": token}, app.basic)
    assert status == 200
    await wait_for_revocation(orders.app[VERIFIER], "jti", jti_of(token))
    status, challenge, body = await answer(await orders.get("/orders", headers=bearer(token)))
    assert (status, challenge, body["error"]) == (401, 'Bearer realm="orders", error="invalid_token"',
                                                  "invalid_token")


async def test_a_missing_scope_is_forbidden_and_named(orders: TestClient, issuer: TestClient,
                                                      app: Registered) -> None:
    token = (await login(issuer, app, scope="orders:read"))["access_token"]
    resp = await orders.post("/orders", json={"item": "tea", "quantity": 1}, headers=bearer(token))
    status, challenge, body = await answer(resp)
    assert (status, challenge) == (403, 'Bearer realm="orders", error="insufficient_scope", scope="orders:write"')
    assert body["error"] == "insufficient_scope"


async def test_the_example_reports_its_state(orders: TestClient) -> None:
    assert (await orders.get("/healthz")).status == 200
    assert (await orders.get("/readyz")).status == 200
    metrics = {f.name for f in text_string_to_metric_families(await (await orders.get("/metrics")).text())}
    assert {"tokensrv_verifier_issuer_requests", "tokensrv_verifier_mirror_connected"} <= metrics


# ---- the decorator on its own, with a verifier fed by a function ----

@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("RS256")


async def service(aiohttp_client: Client, verifier: TokenVerifier) -> TestClient:
    @require(scopes=["orders:read"], roles=["admin"])
    async def admin_only(request: web.Request) -> web.Response:
        return web.json_response({"sub": claims_of(request)["sub"]})

    async def open_page(request: web.Request) -> web.Response:
        return web.json_response({"open": True})

    async def verifier_ctx(app: web.Application) -> Any:
        async with verifier:
            yield

    app = web.Application()
    setup(app, verifier, realm='the "admin" area')
    app.cleanup_ctx.append(verifier_ctx)
    app.router.add_get("/admin", admin_only)
    app.router.add_get("/open", open_page)
    return await aiohttp_client(app)


async def test_roles_are_required_like_scopes(aiohttp_client: Client, signer: Signer, clock: FakeClock) -> None:
    client = await service(aiohttp_client, make_verifier(FunctionFetcher(signer), clock))
    clerk, admin = signer.sign(claims_for(clock())), signer.sign(claims_for(clock(), roles=["admin"]))
    status, challenge, body = await answer(await client.get("/admin", headers=bearer(clerk)))
    assert (status, challenge, body["error"]) == (403, None, "access_denied")
    resp = await client.get("/admin", headers=bearer(admin))
    assert resp.status == 200 and (await resp.json()) == {"sub": "u-1"}


async def test_the_realm_is_quoted(aiohttp_client: Client, signer: Signer, clock: FakeClock) -> None:
    client = await service(aiohttp_client, make_verifier(FunctionFetcher(signer), clock))
    resp = await client.get("/admin")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="the \\"admin\\" area"'


async def test_routes_without_require_stay_open_but_bad_tokens_are_refused(
        aiohttp_client: Client, signer: Signer, clock: FakeClock) -> None:
    client = await service(aiohttp_client, make_verifier(FunctionFetcher(signer), clock))
    assert (await client.get("/open")).status == 200
    assert (await client.get("/open", headers=bearer("not.a.token"))).status == 401


async def test_a_verifier_that_cannot_decide_answers_503(aiohttp_client: Client, signer: Signer,
                                                         clock: FakeClock) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    verifier = make_verifier(FunctionFetcher(signer), clock, redis_url=nowhere, max_disconnected=0)
    client = await service(aiohttp_client, verifier)
    clock.advance(1)
    token = signer.sign(claims_for(clock(), roles=["admin"]))
    resp = await client.get("/admin", headers=bearer(token))
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == "temporarily_unavailable"
