"""A DPoP client for the tests (RFC 9449 §4), built on joserfc alone: it shares no code with
tokensrv's proof checks, so the two can disagree and a test sees it."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import warnings
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

KEY_MAKERS = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "RS256": lambda: RSAKey.generate_key(2048),
    "PS256": lambda: RSAKey.generate_key(2048),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
}


def ath(access_token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()


class DPoPKey:
    """One client key pair, and proofs signed by it."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: Any = KEY_MAKERS[alg]()

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def proof(self, htm: str, htu: str, iat: float, *, access_token: str | None = None,
              nonce: str | None = None, jti: str | None = None, header: dict[str, Any] | None = None,
              claims: dict[str, Any] | None = None) -> str:
        payload: dict[str, Any] = {"jti": jti or secrets.token_urlsafe(16), "htm": htm, "htu": htu,
                                   "iat": int(iat)}
        if access_token is not None:
            payload["ath"] = ath(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims or {})
        payload = {name: value for name, value in payload.items() if value is not None}
        protected = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk(), **(header or {})}
        protected = {name: value for name, value in protected.items() if value is not None}  # None: left out
        with warnings.catch_warnings():  # joserfc warns on the name "EdDSA"; clients still send it
            warnings.simplefilter("ignore")
            return jws.serialize_compact(protected, json.dumps(payload), self.key, algorithms=[self.alg])


def unsigned_proof(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A proof assembled by hand (alg none, a symmetric alg, ...): for the attacks."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)))
