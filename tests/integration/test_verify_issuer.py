"""tokensrv.verify against tokensrv itself (in-process, over real HTTP, real Valkey): discovery,
JWKS caching, hostile tokens made with the server's real key, and every kind of revocation the
server pushes through the feed."""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from joserfc import jwk
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.oauth import (
    Registered,
    add_client,
    add_user,
    login,
    post,
    token,
)
from tests.helpers.verify import (
    AUDIENCE,
    Signer,
    b64,
    issuer_requests,
    issuer_url,
    scrape,
    segment,
    start_issuer,
    verifier_for,
    wait_for_revocation,
)
from tokensrv.admin import operations as admin
from tokensrv.config import Settings
from tokensrv.oauth.endpoints.revocation import revoke_session
from tokensrv.oauth.own_tokens import read_own_jwt
from tokensrv.verify import (
    InvalidSignature,
    InvalidToken,
    MalformedToken,
    RevokedToken,
    TokenVerifier,
    VerifierUnavailable,
)


@pytest.fixture
async def issuer(aiohttp_client: Any, redis: Redis, clock: FakeClock, settings: Settings) -> TestClient:
    return await start_issuer(aiohttp_client, clock, settings)


@pytest.fixture
async def verifier(issuer: TestClient, clock: FakeClock, redis_url: str) -> AsyncIterator[TokenVerifier]:
    async with verifier_for(issuer, clock, redis_url=redis_url) as v:
        yield v


async def first_party_app(issuer: TestClient) -> Registered:
    app = await add_client(issuer, "web", grant_types=("password", "refresh_token"), first_party=True,
                           scopes=("openid", "orders:read", "orders:write"), audience=AUDIENCE)
    await add_user(issuer, "alice", roles=("clerk",))
    return app


async def user_login(issuer: TestClient) -> dict[str, Any]:
    return await login(issuer, await first_party_app(issuer), scope="openid orders:read")


def claims_of(issuer: TestClient, access_token: str) -> dict[str, Any]:
    claims = read_own_jwt(provider_of(issuer), access_token)
    assert claims is not None
    return claims


async def test_tokens_of_users_and_services_verify_without_calling_the_issuer(
        issuer: TestClient, verifier: TokenVerifier) -> None:
    user = await user_login(issuer)
    svc = await add_client(issuer, "svc", scopes=("orders:read",), audience=AUDIENCE)
    status, service, _ = await token(issuer, svc, grant_type="client_credentials")
    assert status == 200
    assert issuer_requests(verifier) == 2  # discovery and the JWKS, once, at start
    claims = await verifier.verify(user["access_token"], scopes=["orders:read"], roles=["clerk"])
    assert claims["iss"] == issuer_url(issuer) and claims["aud"] == AUDIENCE and claims["sid"]
    assert (await verifier.verify(service["access_token"]))["client_id"] == "svc"
    for _ in range(50):
        await verifier.verify(user["access_token"])
    assert issuer_requests(verifier) == 2
    assert verifier.ready


async def test_the_jwks_is_cached_as_the_server_says(issuer: TestClient, verifier: TokenVerifier) -> None:
    assert verifier.keys.max_age == provider_of(issuer).settings.jwks_max_age
    assert await verifier.keys.refresh()
    fetches = {dict(labels)["result"]: value for (name, labels), value in scrape(verifier.metrics.registry).items()
               if name == "tokensrv_verifier_jwks_fetches_total"}
    assert fetches == {"ok": 1, "not_modified": 1}  # the second fetch sent the ETag: 304


async def test_discovery_must_name_the_configured_issuer(issuer: TestClient, clock: FakeClock) -> None:
    user = await user_login(issuer)
    async with TokenVerifier(issuer_url(issuer) + "/", AUDIENCE, clock=clock, registry=CollectorRegistry()) as v:
        assert not v.ready
        with pytest.raises(VerifierUnavailable):
            await v.verify(user["access_token"])


# ---- hostile tokens built from the server's real, published key ----

@pytest.fixture
async def published(issuer: TestClient) -> dict[str, Any]:
    """The signing key as the server publishes it, and the JWKS bytes."""
    resp = await issuer.get("/.well-known/jwks.json")
    body = await resp.read()
    signing = provider_of(issuer).keys.ring.signing
    assert signing is not None
    key = next(k for k in json.loads(body)["keys"] if k["kid"] == signing.kid)
    pem = jwk.import_key(key).public_key.public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"jwk": key, "jwks_bytes": body, "pem": pem}


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def test_hmac_keyed_with_the_public_key_is_refused(issuer: TestClient, verifier: TokenVerifier,
                                                         published: dict[str, Any]) -> None:
    claims = claims_of(issuer, (await user_login(issuer))["access_token"])
    kid = published["jwk"]["kid"]
    secrets = [published["pem"], published["jwks_bytes"], json.dumps(published["jwk"]).encode(),
               published["jwk"]["n"].encode()]
    for alg in ("HS256", "hs256"):
        for secret in secrets:
            with pytest.raises(InvalidSignature):
                await verifier.verify(hmac_signed({"alg": alg, "kid": kid, "typ": "at+jwt"}, claims, secret))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_unsigned_tokens_are_refused(issuer: TestClient, verifier: TokenVerifier,
                                           published: dict[str, Any], alg: str) -> None:
    claims = claims_of(issuer, (await user_login(issuer))["access_token"])
    unsigned = f"{segment({'alg': alg, 'kid': published['jwk']['kid'], 'typ': 'at+jwt'})}.{segment(claims)}"
    for token_text in (unsigned + ".", unsigned + ".AAAA"):
        with pytest.raises(InvalidToken):
            await verifier.verify(token_text)


async def test_key_urls_in_a_token_are_never_fetched(issuer: TestClient, verifier: TokenVerifier,
                                                     published: dict[str, Any]) -> None:
    """An attacker serves its own JWKS and names it in `jku`/`x5u`: it gets no request."""
    attacker = Signer("RS256")
    hits: list[str] = []

    async def serve_jwks(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"keys": [attacker.public_jwk()]})

    evil = web.Application()
    evil.router.add_get("/{tail:.*}", serve_jwks)
    async with TestServer(evil) as server:
        url = str(server.make_url("/jwks.json"))
        claims = claims_of(issuer, (await user_login(issuer))["access_token"])
        for kid in (attacker.kid, published["jwk"]["kid"]):
            for header in ({"jku": url}, {"x5u": url}, {"jwk": attacker.public_jwk()}):
                with pytest.raises(MalformedToken):
                    await verifier.verify(attacker.sign(claims, kid=kid, **header))
        with pytest.raises(InvalidSignature):  # our kid, the attacker's signature
            await verifier.verify(attacker.sign(claims, kid=published["jwk"]["kid"]))
    assert hits == []
    assert issuer_requests(verifier) == 2


# ---- revocations pushed by the server ----

async def test_a_revoked_access_token_is_refused_once_the_feed_delivers_it(
        issuer: TestClient, verifier: TokenVerifier) -> None:
    app = await first_party_app(issuer)
    revoked, kept = (await login(issuer, app))["access_token"], (await login(issuer, app))["access_token"]
    status, _, _ = await post(issuer, "/oauth2/revoke", {"token": revoked}, app.basic)
    assert status == 200
    await wait_for_revocation(verifier, "jti", claims_of(issuer, revoked)["jti"])
    with pytest.raises(RevokedToken):
        await verifier.verify(revoked)
    assert await verifier.verify(kept)
    assert issuer_requests(verifier) == 2  # the revocation came through the feed, offline


async def test_signing_out_everywhere_refuses_the_users_earlier_tokens(
        issuer: TestClient, verifier: TokenVerifier, clock: FakeClock) -> None:
    app = await first_party_app(issuer)
    before = (await login(issuer, app))["access_token"]
    user = await admin.revoke_everywhere(provider_of(issuer), "alice")
    await wait_for_revocation(verifier, "sub", user["sub"])
    with pytest.raises(RevokedToken):
        await verifier.verify(before)
    clock.advance(1)  # tokens issued after the not-before second are fine
    assert await verifier.verify((await login(issuer, app))["access_token"])


async def test_logging_out_refuses_the_sessions_tokens(issuer: TestClient, verifier: TokenVerifier) -> None:
    app = await first_party_app(issuer)
    ended, other = await login(issuer, app), await login(issuer, app)
    sid = claims_of(issuer, ended["access_token"])["sid"]
    await revoke_session(provider_of(issuer), sid)  # what RP-initiated logout does
    await wait_for_revocation(verifier, "sid", sid)
    with pytest.raises(RevokedToken):
        await verifier.verify(ended["access_token"])
    assert await verifier.verify(other["access_token"])


async def test_a_revoked_signing_key_is_dropped_and_its_tokens_refused(
        issuer: TestClient, verifier: TokenVerifier) -> None:
    app = await first_party_app(issuer)
    signed_before = (await login(issuer, app))["access_token"]
    kid = provider_of(issuer).keys.ring.signing.kid  # type: ignore[union-attr]
    await admin.revoke_key(provider_of(issuer), kid)
    await wait_for_revocation(verifier, "kid", kid)
    assert verifier.keys.get(kid) is None
    with pytest.raises(RevokedToken):
        await verifier.verify(signed_before)
    signed_after = (await login(issuer, app))["access_token"]  # by the key promoted in its place
    assert await verifier.verify(signed_after)
    assert verifier.keys.get(kid) is None
