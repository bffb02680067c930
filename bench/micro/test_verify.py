"""Verifying one RS256 access token: raw signature check, PyJWT with the same claim checks,
joserfc, and tokensrv.verify's TokenVerifier."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import Coroutine, Iterator
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt as jose_jwt
from joserfc.jwt import JWTClaimsRegistry

from bench.micro.conftest import AUDIENCE, ISSUER, access_claims, provider
from tokensrv.oauth.own_tokens import ACCESS_TOKEN_TYPE, sign

LEEWAY = 30


@pytest.fixture(scope="module")
def token(keys) -> str:
    return sign(provider(keys["RS256"]), access_claims(), ACCESS_TOKEN_TYPE)


def test_verify_raw(benchmark, keys, token):
    """Only the RSA signature check (input already split and decoded): the floor."""
    benchmark.group = "verify RS256"
    public = keys["RS256"].key.private_key.public_key()
    signing_input, _, signature = token.encode().rpartition(b".")
    raw = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
    pad, digest = padding.PKCS1v15(), hashes.SHA256()
    benchmark(public.verify, raw, signing_input, pad, digest)


def test_verify_pyjwt(benchmark, keys, token):
    """PyJWT's decode with the checks TokenVerifier makes: alg allow-list, signature, typ, iss,
    aud, exp, nbf, iat, required claims, leeway."""
    benchmark.group = "verify RS256"
    public = keys["RS256"].key.private_key.public_key()
    options = {"require": ["exp", "iat", "iss", "aud", "sub", "jti"]}

    def decode() -> dict[str, Any]:
        decoded = pyjwt.decode_complete(token, public, algorithms=["RS256"], audience=AUDIENCE,
                                        issuer=ISSUER, leeway=LEEWAY, options=options)
        if decoded["header"].get("typ") != ACCESS_TOKEN_TYPE:
            raise pyjwt.InvalidTokenError("typ")
        return decoded["payload"]

    assert benchmark(decode)["sub"] == "svc"


def test_verify_joserfc(benchmark, keys, token):
    benchmark.group = "verify RS256"
    public = keys["RS256"].key
    registry = JWTClaimsRegistry(leeway=LEEWAY, iss={"essential": True, "value": ISSUER},
                                 aud={"essential": True, "value": AUDIENCE}, exp={"essential": True},
                                 iat={"essential": True}, sub={"essential": True}, jti={"essential": True})

    def decode() -> dict[str, Any]:
        decoded = jose_jwt.decode(token, public, algorithms=["RS256"])
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise ValueError("typ")
        registry.validate(decoded.claims)
        return decoded.claims

    assert benchmark(decode)["sub"] == "svc"


def completed(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends, without an event loop's per-call overhead: what an
    `await verifier.verify(token)` costs inside a handler."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the verification waited for I/O")


@pytest.fixture
def verifier(keys) -> Iterator[Any]:
    module = pytest.importorskip("tokensrv.verify")  # reported "pending" until it lands
    from prometheus_client import CollectorRegistry

    from tokensrv.verify.jwks import JWKSResponse

    document = {"keys": [keys["RS256"].public_jwk()]}

    async def fetch(etag: str | None) -> JWKSResponse:
        return JWKSResponse(document, '"v1"', 600.0)

    loop = asyncio.new_event_loop()
    found = module.TokenVerifier(ISSUER, AUDIENCE, fetcher=fetch, leeway=LEEWAY,
                                 registry=CollectorRegistry())
    loop.run_until_complete(found.start())
    yield found
    loop.run_until_complete(found.close())
    loop.close()


def test_verify_tokensrv(benchmark, verifier, token):
    benchmark.group = "verify RS256"
    assert benchmark(lambda: completed(verifier.verify(token)))["sub"] == "svc"
