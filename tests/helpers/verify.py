"""Helpers for the tokensrv.verify tests: keys that sign hand-made tokens, and a JWKS fetcher
that is a plain function (the seam the verifier offers), recording every call."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwk
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.ports import free_port
from tokensrv.config import Settings
from tokensrv.server.app import create_app
from tokensrv.verify import FetchError, JWKSResponse, TokenVerifier

ISSUER = "https://id.example.test"
AUDIENCE = "orders"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(value: dict[str, Any] | bytes) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


class Signer:
    """A key pair of one algorithm; signs tokens with whatever header a test wants."""

    def __init__(self, alg: str = "RS256") -> None:
        self.alg = alg
        if alg == "RS256":
            self.key: Any = jwk.RSAKey.generate_key(2048, private=True)
        elif alg == "ES256":
            self.key = jwk.ECKey.generate_key("P-256", private=True)
        else:
            self.key = jwk.OKPKey.generate_key("Ed25519", private=True)
        self.kid = self.key.thumbprint()

    def public_jwk(self, **changes: Any) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig", **changes}

    def raw_signature(self, data: bytes) -> bytes:
        private = self.key.private_key
        if self.alg == "RS256":
            return bytes(private.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        if self.alg == "ES256":
            r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return bytes(private.sign(data))

    def header(self, **changes: Any) -> dict[str, Any]:
        header = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt", **changes}
        return {k: v for k, v in header.items() if v is not None}

    def sign(self, claims: dict[str, Any] | bytes, **header_changes: Any) -> str:
        signing_input = f"{segment(self.header(**header_changes))}.{segment(claims)}"
        return f"{signing_input}.{b64(self.raw_signature(signing_input.encode()))}"


def claims_for(now: float | None = None, **changes: Any) -> dict[str, Any]:
    """Claims of a user access token as tokensrv issues them; `None` removes a claim."""
    now = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "sub": "u-1", "aud": AUDIENCE, "exp": now + 900, "iat": now, "jti": "j-1",
              "client_id": "web", "scope": "orders:read orders:write", "auth_time": now, "sid": "s-1",
              "roles": ["clerk"], **changes}
    return {k: v for k, v in claims.items() if v is not None}


class FunctionFetcher:
    """A JWKS fetcher that is a function: serves `keys`, records each call's ETag, can be held
    (`gate`) to keep a fetch in flight, or made to fail."""

    def __init__(self, *signers: Signer, max_age: float | None = 600) -> None:
        self.keys = [s.public_jwk() for s in signers]
        self.max_age = max_age
        self.calls: list[str | None] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()  # set when a call has started
        self.fail = False
        self.version = 1

    def publish(self, *signers: Signer) -> None:
        self.keys += [s.public_jwk() for s in signers]
        self.version += 1

    async def __call__(self, etag: str | None) -> JWKSResponse:
        self.calls.append(etag)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise FetchError("the issuer is down")
        current = f'"v{self.version}"'
        if etag == current:
            return JWKSResponse(None, current, self.max_age)
        return JWKSResponse({"keys": list(self.keys)}, current, self.max_age)


def make_verifier(fetcher: Any, clock: Any = time.time, **options: Any) -> TokenVerifier:
    return TokenVerifier(ISSUER, AUDIENCE, fetcher=fetcher, clock=clock, registry=CollectorRegistry(),
                         **options)


# ---- against tokensrv itself (in-process app on a known port, real HTTP, real Valkey) ----

async def start_issuer(aiohttp_client: Any, clock: FakeClock, settings: Settings) -> TestClient:
    """tokensrv on a fixed port, so the issuer in its tokens and discovery is its real URL. The
    caller's fixture also requests `redis`, which empties the store."""
    port = free_port()
    app = create_app(dataclasses.replace(settings, issuer=f"http://127.0.0.1:{port}"), clock=clock,
                     run_schedule=False)
    client: TestClient = await aiohttp_client(app, server_kwargs={"port": port})
    await provider_of(client).keys.tick()
    return client


def issuer_url(client: TestClient) -> str:
    return provider_of(client).settings.issuer


def verifier_for(client: TestClient, clock: Any, **options: Any) -> TokenVerifier:
    """A verifier of `client`'s tokens for the audience `orders`, over HTTP like any service."""
    return TokenVerifier(issuer_url(client), AUDIENCE, clock=clock, registry=CollectorRegistry(), **options)


def issuer_requests(verifier: TokenVerifier) -> float:
    """Every HTTP request the verifier made to the issuer so far (its own metric; alone in its
    registry, so its audience's count is its own)."""
    return sum(value for (name, labels), value in scrape(verifier.metrics.registry).items()
               if name == "tokensrv_verifier_issuer_requests_total" and ("audience", verifier.audience) in labels)


async def wait_for_revocation(verifier: TokenVerifier, kind: str, value: str, timeout: float = 10.0) -> None:
    """Until the verifier's mirror holds the revocation (pushed through the feed): no sleeping."""
    mirror = verifier.mirror
    assert mirror is not None
    await mirror.wait_for(lambda: value in getattr(mirror.state, kind), timeout)


# ---- metrics, as Prometheus scrapes them ----

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry = REGISTRY) -> Samples:
    """Every sample of a scrape of `registry` (the text format, parsed back), by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get(("tokensrv_verifier_" + name, frozenset(labels.items())))


def gauge(verifier: TokenVerifier, name: str, registry: CollectorRegistry | None = None) -> float | None:
    """The verifier's own sample of a state gauge, or None when it has none."""
    return sample(scrape(registry or verifier.metrics.registry), name, audience=verifier.audience,
                  verifier=verifier.metrics.serial)
