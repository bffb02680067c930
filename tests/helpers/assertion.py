"""Signing client assertions (RFC 7523) in tests, and a real JWKS server for jwks_uri clients."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from tokensrv.oauth.clients.assertion import ASSERTION_TYPE

Key = RSAKey | ECKey | OKPKey
KEY_FOR = {"RS256": ("RSA", 2048), "PS256": ("RSA", 2048), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"),
           "RS384": ("RSA", 2048), "RS512": ("RSA", 2048), "PS384": ("RSA", 2048), "ES384": ("EC", "P-384")}


def new_key(alg: str = "RS256", kid: str | None = None) -> Key:
    kty, size = KEY_FOR[alg]
    kinds: dict[str, Any] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
    key: Key = kinds[kty].generate_key(size, parameters={"kid": kid} if kid else None, auto_kid=kid is None)
    return key


def public_jwks(*keys: Key) -> dict[str, Any]:
    return dict(KeySet(list(keys)).as_dict(private=False))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(client_id: str, aud: str | list[str], now: int, **changes: Any) -> dict[str, Any]:
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16)}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(key: Key, claims: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
    import warnings

    from joserfc.errors import SecurityWarning
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
        head = {"alg": alg, **({"kid": key.kid} if key.kid else {}), **header}
        return jwt.encode(head, claims, key, algorithms=[alg])


def unsigned(claims: dict[str, Any], **header: Any) -> str:
    """alg none: no signature at all."""
    head = b64url(json.dumps({"alg": "none", **header}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}."


def hs256_with(secret: bytes, claims: dict[str, Any], kid: str | None) -> str:
    """alg confusion: an HMAC whose key is the client's *public* key, which anyone has."""
    head = b64url(json.dumps({"alg": "HS256", "kid": kid}).encode())
    body = b64url(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


def assertion_form(assertion: str, **params: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **params}


@dataclass
class JWKSServer:
    """A real HTTP server publishing a JWKS, counting how often it is fetched."""
    jwks: dict[str, Any]
    fetches: int = 0
    status: int = 200
    body: bytes | None = None  # instead of the JWKS (too large, not JSON)
    redirect_to: str | None = None
    requests: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        if self.body is not None:
            return web.Response(body=self.body, content_type="application/json")
        return web.json_response(self.jwks, status=self.status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/jwks.json", self.handle)
        return app
