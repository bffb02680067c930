"""Keys and tokens for the in-process micro-benchmarks (pytest-benchmark, one pinned core)."""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from tokensrv.keys.signing import SigningKey, generate_key, jws_signature

ALGORITHMS = ("RS256", "ES256", "EdDSA")
ISSUER = "http://127.0.0.1:8080"
AUDIENCE = "orders"


def access_claims() -> dict[str, Any]:
    """What a client_credentials access token carries (tokensrv.oauth.tokens.access_claims)."""
    now = int(time.time())
    return {"iss": ISSUER, "sub": "svc", "aud": AUDIENCE, "exp": now + 900, "iat": now,
            "jti": "bVxq1KhXQ2y0m1iC6GZz7w", "client_id": "svc", "scope": "read write"}


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {alg: generate_key(alg, int(time.time())) for alg in ALGORITHMS}


def provider(key: SigningKey) -> Any:
    """The part of a Provider that `tokens.sign` reads: the signing key of the key ring, and the
    signature function (Provider.signature, which tracing wraps)."""
    return SimpleNamespace(keys=SimpleNamespace(ring=SimpleNamespace(signing=key)), signature=jws_signature)
