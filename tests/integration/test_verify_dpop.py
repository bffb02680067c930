"""tokensrv.verify and DPoP-bound tokens (RFC 9449 §7): verify(..., dpop_proof=, method=, url=)
and the aiohttp middleware (the orders example), against tokens from the real server, with
proofs from the tests' own joserfc client."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from examples.orders.app import create_app as create_orders
from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.dpop import DPoPKey
from tests.helpers.oauth import PASSWORD, Registered, post
from tests.helpers.verify import AUDIENCE
from tokensrv.verify import InvalidDPoPBinding, InvalidDPoPProof, TokenVerifier
from tokensrv.verify.middleware import claims_of, require, setup

ALGS = 'algs="ES256 RS256 PS256 EdDSA"'


def verifier_of(issuer: TestClient, clock: FakeClock, redis_url: str | None = None) -> TokenVerifier:
    return TokenVerifier(provider_of(issuer).settings.issuer, AUDIENCE, redis_url, clock=clock,
                         registry=CollectorRegistry())


@pytest.fixture
async def orders(aiohttp_client: Any, issuer: TestClient, clock: FakeClock, redis_url: str) -> TestClient:
    verifier = verifier_of(issuer, clock, redis_url)
    client: TestClient = await aiohttp_client(create_orders(verifier, CollectorRegistry()))
    return client


async def dpop_login(issuer: TestClient, app: Registered, key: DPoPKey | None) -> str:
    p = provider_of(issuer)
    headers = {**app.basic}
    if key is not None:
        headers["DPoP"] = key.proof("POST", p.settings.issuer + "/oauth2/token", p.clock())
    status, body, _ = await post(issuer, "/oauth2/token", {"grant_type": "password", "username": "alice",
                                                           "password": PASSWORD, "scope": "orders:read"}, headers)
    assert status == 200, body
    assert body["token_type"] == ("DPoP" if key else "Bearer")
    return str(body["access_token"])


async def get_orders(orders: TestClient, token: str, proof: str | None = None, scheme: str = "DPoP",
                     extra: list[tuple[str, str]] = ()) -> tuple[int, list[str], dict[str, Any]]:
    headers = [("Authorization", f"{scheme} {token}"), *([("DPoP", proof)] if proof else []), *extra]
    resp = await orders.get("/orders", headers=headers)
    return resp.status, resp.headers.getall("WWW-Authenticate", []), await resp.json()


def url_of(orders: TestClient, path: str = "/orders") -> str:
    return str(orders.make_url(path))


async def test_a_dpop_bound_token_with_its_proof_is_accepted(issuer, app, orders, clock):
    key = DPoPKey()
    token = await dpop_login(issuer, app, key)
    status, _, body = await get_orders(orders, token, key.proof("GET", url_of(orders), clock(), access_token=token))
    assert (status, body) == (200, {"orders": []})


async def test_a_dpop_bound_token_presented_as_bearer_is_refused(issuer, app, orders):
    token = await dpop_login(issuer, app, DPoPKey())
    status, challenges, body = await get_orders(orders, token, scheme="Bearer")
    assert (status, body["error"]) == (401, "invalid_token")
    assert challenges == [f'DPoP realm="orders", error="invalid_token", {ALGS}']


def proofs(key: DPoPKey, orders: TestClient, token: str, now: float) -> dict[str, str | None]:
    url = url_of(orders)
    return {
        "another URL": key.proof("GET", url_of(orders, "/healthz"), now, access_token=token),
        "another method": key.proof("POST", url, now, access_token=token),
        "stale iat": key.proof("GET", url, now - 61, access_token=token),
        "no ath": key.proof("GET", url, now),
        "another token's ath": key.proof("GET", url, now, access_token=token + "x"),
        "no proof": None,
    }


@pytest.mark.parametrize("attack", ["another URL", "another method", "stale iat", "no ath",
                                    "another token's ath", "no proof"])
async def test_a_bad_proof_is_invalid_dpop_proof(issuer, app, orders, clock, attack):
    key = DPoPKey()
    token = await dpop_login(issuer, app, key)
    status, challenges, body = await get_orders(orders, token, proofs(key, orders, token, clock())[attack])
    assert (status, body["error"]) == (401, "invalid_dpop_proof"), attack
    assert challenges == [f'DPoP realm="orders", error="invalid_dpop_proof", {ALGS}']


async def test_a_replayed_proof_is_refused(issuer, app, orders, clock):
    key = DPoPKey()
    token = await dpop_login(issuer, app, key)
    proof = key.proof("GET", url_of(orders), clock(), access_token=token)
    assert (await get_orders(orders, token, proof))[0] == 200
    status, _, body = await get_orders(orders, token, proof)
    assert (status, body["error"]) == (401, "invalid_dpop_proof")


async def test_two_dpop_headers_are_refused(issuer, app, orders, clock):
    key = DPoPKey()
    token = await dpop_login(issuer, app, key)
    proof = key.proof("GET", url_of(orders), clock(), access_token=token)
    second = key.proof("GET", url_of(orders), clock(), access_token=token)
    status, _, body = await get_orders(orders, token, proof, extra=[("DPoP", second)])
    assert (status, body["error"]) == (401, "invalid_dpop_proof")


async def test_a_proof_by_another_key_than_the_tokens_is_refused(issuer, app, orders, clock):
    token = await dpop_login(issuer, app, DPoPKey())
    proof = DPoPKey().proof("GET", url_of(orders), clock(), access_token=token)
    status, challenges, body = await get_orders(orders, token, proof)
    assert (status, body["error"]) == (401, "invalid_token")
    assert challenges == [f'DPoP realm="orders", error="invalid_token", {ALGS}']


async def test_an_unbound_token_with_the_dpop_scheme_is_refused(issuer, app, orders, clock):
    key = DPoPKey()
    token = await dpop_login(issuer, app, None)
    status, _, body = await get_orders(orders, token, key.proof("GET", url_of(orders), clock(), access_token=token))
    assert (status, body["error"]) == (401, "invalid_token")
    status, _, _ = await get_orders(orders, token, scheme="Bearer")
    assert status == 200  # as a bearer token it is fine


async def test_no_credentials_get_both_challenges(orders):
    resp = await orders.get("/orders")
    assert resp.headers.getall("WWW-Authenticate") == ['Bearer realm="orders"', f'DPoP realm="orders", {ALGS}']


async def test_verify_takes_the_proof_and_refuses_a_bound_token_without_one(issuer, app, clock):
    key = DPoPKey()
    token = await dpop_login(issuer, app, key)
    url = "https://orders.example/orders"
    async with verifier_of(issuer, clock) as verifier:
        with pytest.raises(InvalidDPoPBinding):
            await verifier.verify(token)
        proof = key.proof("GET", url, clock(), access_token=token)
        claims = await verifier.verify(token, dpop_proof=proof, method="GET", url=url)
        assert claims["cnf"] == {"jkt": key.jkt}
        with pytest.raises(InvalidDPoPProof):  # the replay cache is the verifier's own
            await verifier.verify(token, dpop_proof=proof, method="GET", url=url)


async def test_behind_a_proxy_the_proof_names_the_public_url(aiohttp_client, issuer, app, clock):
    @require(scopes=["orders:read"])
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"sub": claims_of(request)["sub"]})

    service = web.Application()
    service.router.add_get("/orders", handler)
    verifier = verifier_of(issuer, clock)
    setup(service, verifier, realm="orders", public_url="https://orders.example/api/")
    service.on_startup.append(lambda _: verifier.start())
    service.on_cleanup.append(lambda _: verifier.close())
    client = await aiohttp_client(service)
    key = DPoPKey()
    token = await dpop_login(issuer, app, key)
    public = key.proof("GET", "https://orders.example/api/orders", clock(), access_token=token)
    assert (await get_orders(client, token, public))[0] == 200
    direct = key.proof("GET", url_of(client), clock(), access_token=token)
    assert (await get_orders(client, token, direct))[2]["error"] == "invalid_dpop_proof"
