"""tokensrv.verify: verify tokensrv's access tokens offline, in a downstream service.

    pip install ./verify            # from a tokensrv checkout; './verify[redis]' for the revocation mirror

    from tokensrv.verify import TokenVerifier, InvalidToken
    async with TokenVerifier(issuer="http://127.0.0.1:8080", audience="orders",
                             redis_url="redis://127.0.0.1:6379/0") as verifier:
        claims = await verifier.verify(token)  # dict, or InvalidToken (or a subclass)

Adapters: `tokensrv.verify.middleware` (aiohttp), `.asgi` and `.fastapi` (Starlette, FastAPI),
`.sync` (a blocking verifier with its own thread) with `.flask` and `.django`.
This package imports no other tokensrv module: it is the distribution tokensrv-verify (verify/ in
the repository), which the server installs too.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .claims import has_role, has_scope, require_roles, require_scopes
from .errors import (
    ExpiredToken,
    InsufficientRole,
    InsufficientScope,
    InvalidClaims,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    InvalidSignature,
    InvalidToken,
    MalformedToken,
    NotYetValid,
    RevokedToken,
    UnknownKey,
    VerifierUnavailable,
)
from .feed import FeedEntry
from .jwks import FetchError, JWKSResponse

# tokensrv-verify's version (verify/pyproject.toml reads it here); the server of the same version
# is the one this verifier is released with (verify/README.md: compatibility)
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .verifier import TokenVerifier

__all__ = [
    "ExpiredToken",
    "FeedEntry",
    "FetchError",
    "InsufficientRole",
    "InsufficientScope",
    "InvalidClaims",
    "InvalidDPoPBinding",
    "InvalidDPoPProof",
    "InvalidSignature",
    "InvalidToken",
    "JWKSResponse",
    "MalformedToken",
    "NotYetValid",
    "RevokedToken",
    "TokenVerifier",
    "UnknownKey",
    "VerifierUnavailable",
    "has_role",
    "has_scope",
    "require_roles",
    "require_scopes",
]

# Loaded on first use: they import prometheus-client, which tokensrv itself must import only after
# `serve --workers N` has chosen its metrics folder, and tokensrv reads its store URL setting with
# .store_url (which imports this package) before that.
_LAZY = {"TokenVerifier": ".verifier"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
