"""Signing keys: the `keys/` folder, the lifecycle next -> current -> retired -> removed, the JWKS.

A key is published for at least JWKS_MAX_AGE before it signs and stays published for the longest
token lifetime plus JWKS_MAX_AGE after it stops signing, so a verifier holding a cached JWKS never
meets an unknown `kid`. `next_step` is the pure decision; `KeyFolder` (folder.py) does the file work.

Readers never see half a step. Each file is replaced whole (a new inode), a promotion writes the
new current key before it retires the old one, and the newest activated `current` key is the one
that signs, so every state the folder passes through has exactly one signing key; a reader takes
the folder as it was at one instant (listed, read, listed again unchanged) and settles an older
`current` key left by a promotion caught half-way as retired.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwk

from tokensrv.config import Settings

log = logging.getLogger("tokensrv.keys")

KeyState = Literal["next", "current", "retired"]
SigningJWK = jwk.RSAKey | jwk.ECKey | jwk.OKPKey
MIN_RSA_BITS = 2048
# one (name, inode, size, mtime) per key file: a write replaces the file, so any change shows


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    state: KeyState
    created_at: int  # also the moment it was first published
    key: SigningJWK = dataclasses.field(repr=False, compare=False)
    activated_at: int | None = None
    retired_at: int | None = None
    rotate_after: int | None = None  # set on `current`: when the schedule (or `keys rotate`) wants it replaced

    def public_jwk(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update(kid=self.kid, use="sig", alg=self.alg)
        return public

    def to_file(self) -> dict[str, Any]:
        return {
            "kid": self.kid, "alg": self.alg, "state": self.state, "created_at": self.created_at,
            "activated_at": self.activated_at, "retired_at": self.retired_at,
            "rotate_after": self.rotate_after, "jwk": self.key.as_dict(private=True),
        }

    @classmethod
    def from_file(cls, data: dict[str, Any]) -> SigningKey:
        if not isinstance(data["jwk"], dict) or data["jwk"].get("kty") not in ("RSA", "EC", "OKP"):
            raise ValueError("not an asymmetric signing key")
        key = jwk.import_key(data["jwk"])
        if not key.is_private:
            raise ValueError("the file holds no private key")
        if isinstance(key, jwk.RSAKey) and key.private_key.key_size < MIN_RSA_BITS:  # type: ignore[union-attr]
            raise ValueError(f"RSA key shorter than {MIN_RSA_BITS} bits")
        if data["state"] not in ("next", "current", "retired"):
            raise ValueError(f"unknown state {data['state']!r}")
        if key.thumbprint() != data["kid"]:
            raise ValueError("kid is not the key's RFC 7638 thumbprint")
        if data["alg"] != algorithm_for(key):
            raise ValueError(f"alg {data['alg']!r} does not fit the key")
        return cls(
            kid=data["kid"], alg=data["alg"], state=data["state"], created_at=int(data["created_at"]),
            key=key,  # type: ignore[arg-type]
            activated_at=data.get("activated_at"), retired_at=data.get("retired_at"),
            rotate_after=data.get("rotate_after"),
        )


def jws_signature(key: SigningKey, signing_input: bytes) -> bytes:
    """The JWS signature of `signing_input` with `key`'s private key: RS256 (RFC 7518 §3.3),
    ES256 (§3.4: R || S, not DER) or EdDSA (RFC 8037 §3.1). The default Provider.signature
    (tokensrv/server/tracing.py puts it in a span when tracing is configured)."""
    private_key: Any = key.key.private_key
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(signing_input)
    raise TypeError(f"cannot sign with {type(private_key).__name__}")


def algorithm_for(key: Any) -> str:
    if isinstance(key, jwk.RSAKey):
        return "RS256"
    if isinstance(key, jwk.ECKey) and key.curve_name == "P-256":
        return "ES256"
    if isinstance(key, jwk.OKPKey) and key.curve_name == "Ed25519":
        return "EdDSA"
    raise ValueError("unsupported key type")


def generate_key(alg: str, now: int) -> SigningKey:
    """A new key in state `next`. Blocking (RSA key generation): run it in an executor."""
    key: SigningJWK
    if alg == "RS256":
        key = jwk.RSAKey.generate_key(MIN_RSA_BITS, private=True)
    elif alg == "ES256":
        key = jwk.ECKey.generate_key("P-256", private=True)
    elif alg == "EdDSA":
        key = jwk.OKPKey.generate_key("Ed25519", private=True)
    else:
        raise ValueError(f"unsupported algorithm {alg}")
    return SigningKey(kid=key.thumbprint(), alg=alg, state="next", created_at=now, key=key)


# ---- the schedule: a pure function of the keys, the time and the settings ----

@dataclass(frozen=True)
class Step:
    action: Literal["create", "promote", "remove"]
    kid: str | None = None  # promote: the next key; remove: the retired key

    def describe(self) -> str:
        return self.action if self.kid is None else f"{self.action} {self.kid}"


def current_key(keys: Sequence[SigningKey]) -> SigningKey | None:
    """The key that signs: the newest activated `current` one (ties broken the same everywhere)."""
    candidates = [k for k in keys if k.state == "current"]
    return max(candidates, key=lambda k: (k.activated_at or 0, k.created_at, k.kid), default=None)


def settled(keys: Sequence[SigningKey]) -> list[SigningKey]:
    """The keys with one `current` key at most. A promotion writes its new current key before it
    retires the old one, so an older `current` key is one whose successor already signs (the
    promotion was read between its two writes, or stopped there): retired since that activation."""
    signing = current_key(keys)
    if signing is None:
        return list(keys)
    return [key if key.state != "current" or key is signing else
            dataclasses.replace(key, state="retired", retired_at=signing.activated_at, rotate_after=None)
            for key in keys]


def planned_steps(keys: Sequence[SigningKey], settings: Settings) -> list[tuple[int, Step]]:
    """Every step the schedule foresees with the moment it falls due (0: now), in priority order."""
    current = current_key(keys)
    upcoming = sorted((k for k in keys if k.state == "next"), key=lambda k: k.created_at)
    if current is None:
        # bootstrap or recovery: nothing signs, so waiting for caches gains nothing
        return [(0, Step("promote", upcoming[0].kid) if upcoming else Step("create"))]
    if not upcoming:
        return [(0, Step("create"))]
    oldest_next = upcoming[0]
    rotate_after = current.rotate_after
    if rotate_after is None:
        rotate_after = (current.activated_at or current.created_at) + settings.key_rotation_period
    plans = [(max(rotate_after, oldest_next.created_at + settings.key_publish_delay),
              Step("promote", oldest_next.kid))]
    plans += [(key.retired_at + settings.max_token_ttl + settings.key_publish_delay, Step("remove", key.kid))
              for key in keys if key.state == "retired" and key.retired_at is not None]
    return plans


def next_step(keys: Sequence[SigningKey], now: int, settings: Settings) -> Step | None:
    """What the rotation schedule wants done now, if anything; one step at a time."""
    return next((step for due, step in planned_steps(keys, settings) if now >= due), None)


def next_step_due(keys: Sequence[SigningKey], settings: Settings) -> int | None:
    """When the schedule will next act (epoch seconds)."""
    return min((due for due, _ in planned_steps(keys, settings)), default=None)


def apply_step(keys: Sequence[SigningKey], step: Step, now: int, alg: str) -> tuple[list[SigningKey], list[str]]:
    """The keys to write and the kids to delete for `step`. Blocking when it generates a key."""
    if step.action == "create":
        return [generate_key(alg, now)], []
    if step.action == "remove":
        return [], [step.kid] if step.kid else []
    writes = []
    for key in keys:
        if key.kid == step.kid:
            writes.append(dataclasses.replace(key, state="current", activated_at=now, rotate_after=None))
        elif key.state == "current":
            writes.append(dataclasses.replace(key, state="retired", retired_at=now, rotate_after=None))
    return writes, []
