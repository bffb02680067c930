"""RFC 7515 compact JWS, the lean way: strict parsing, then one signature check with a cached
`cryptography` public key. joserfc only imports (and thereby validates) the JWKS.

Everything cheap is rejected before any crypto: size, shape, base64url strictness, the header.
"""
from __future__ import annotations

import binascii
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwk
from joserfc.errors import JoseError

from .errors import InvalidSignature, MalformedToken
from .json_limits import JSONRejected, parse_object

log = logging.getLogger("tokensrv.verify")

MIN_RSA_BITS = 2048
_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_EC_CURVES = {"ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
SUPPORTED_ALGORITHMS = RSA_ALGORITHMS | set(_EC_CURVES) | {"EdDSA"}
# header parameters that would let the token choose or carry its own key (RFC 7515 §4.1.2-6),
# and `crit`: we understand no extension, so any critical one is unknown (§4.1.11)
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})

_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_ALPHABET = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def b64url_decode(segment: str) -> bytes:
    """Unpadded, canonical base64url (RFC 7515 §2). The caller has checked the alphabet."""
    rest = len(segment) % 4
    if rest == 1:
        raise MalformedToken("base64url segment of impossible length")
    # unused trailing bits must be zero, so one token has exactly one spelling
    if rest and _ALPHABET[segment[-1]] & (0x0F if rest == 2 else 0x03):
        raise MalformedToken("non-canonical base64url")
    try:  # binascii on translated bytes: several times faster than base64.urlsafe_b64decode
        return binascii.a2b_base64((segment + "=" * (-rest % 4)).encode("ascii").translate(_TO_STANDARD))
    except (binascii.Error, ValueError):
        raise MalformedToken("bad base64url") from None


def json_object(raw: bytes, what: str, max_bytes: int) -> dict[str, Any]:
    """A JWS header or payload: a JSON object, bounded in size and depth (json_limits)."""
    try:
        return parse_object(raw, max_bytes=max_bytes)
    except JSONRejected as exc:
        raise MalformedToken(f"the {what} is not a JSON object we accept: {exc}") from None


@dataclass(frozen=True, slots=True)
class Compact:
    """A compact JWS cut in its parts; nothing verified yet."""
    header_segment: str
    signing_input: bytes
    payload: bytes
    signature: bytes


def split(token: object, max_bytes: int) -> Compact:
    if not isinstance(token, str):
        raise MalformedToken("the token is not a string")
    if len(token) > max_bytes:
        raise MalformedToken("the token is too large")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise MalformedToken("not three base64url segments")
    header, payload, signature = match.groups()
    return Compact(header, token[:match.end(2)].encode("ascii"), b64url_decode(payload),
                   b64url_decode(signature))


def unverified(token: object, max_bytes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a compact JWS, parsed with the bounds but NOT verified: for code
    that must look inside before it can pick a key (a client assertion names its client), or that
    hands the token to joserfc, whose json.loads has no depth limit. MalformedToken otherwise."""
    parts = split(token, max_bytes)
    return (json_object(b64url_decode(parts.header_segment), "header", max_bytes),
            json_object(parts.payload, "payload", max_bytes))


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One key of the issuer's JWKS, ready to verify: what it may verify is fixed at import."""
    kid: str
    algorithms: frozenset[str]
    key: Any  # a cryptography public key object

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> None:
        if alg not in self.algorithms:
            raise InvalidSignature(f"key {self.kid} does not verify {alg}")
        try:
            _verify(self.key, alg, signing_input, signature)
        except (_BadSignature, ValueError):
            raise InvalidSignature("signature mismatch") from None


def _verify(key: Any, alg: str, data: bytes, signature: bytes) -> None:
    if alg.startswith("RS"):
        key.verify(signature, data, padding.PKCS1v15(), _HASHES[alg[2:]])
    elif alg.startswith("PS"):  # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash
        digest = _HASHES[alg[2:]]
        key.verify(signature, data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    elif alg == "EdDSA":
        key.verify(signature, data)
    else:
        size = _EC_CURVES[alg][1]
        if len(signature) != 2 * size:  # JWS carries R || S, fixed width (RFC 7518 §3.4)
            raise ValueError("bad ECDSA signature length")
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_HASHES[alg[2:]]))


def algorithms_for(public: Any) -> frozenset[str]:
    """The algorithms a key type can verify: the key type must match the token's `alg`."""
    if isinstance(public, rsa.RSAPublicKey):
        return RSA_ALGORITHMS if public.key_size >= MIN_RSA_BITS else frozenset()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return frozenset(a for a, (curve, _) in _EC_CURVES.items() if curve == public.curve.name)
    if isinstance(public, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return frozenset({"EdDSA"})
    return frozenset()


def import_jwks(document: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, PublicKey]:
    """The usable signing keys of a JWKS, by kid. Keys we could never accept are left out."""
    found: dict[str, PublicKey] = {}
    entries = document.get("keys")
    for entry in entries if isinstance(entries, list) else ():
        key = import_key(entry, allowed)
        if key is not None and key.kid not in found:  # a repeated kid: the first one counts
            found[key.kid] = key
    return found


def import_key(entry: Any, allowed: frozenset[str]) -> PublicKey | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
        return None
    if entry.get("kty") not in ("RSA", "EC", "OKP") or entry.get("use", "sig") != "sig":
        return None  # symmetric keys never verify anything here; encryption keys are not ours
    try:
        with warnings.catch_warnings():  # weak keys are refused below, not merely warned about
            warnings.simplefilter("ignore")
            imported = jwk.import_key(entry)
        public = imported.public_key
    except (JoseError, ValueError, TypeError, KeyError):
        log.warning("JWKS key %.64s is unusable", entry["kid"])
        return None
    algorithms = algorithms_for(public) & allowed
    if "alg" in entry:
        algorithms &= {entry["alg"]}
    return PublicKey(entry["kid"], algorithms, public) if algorithms else None
