"""RFC 9449 DPoP proofs (§4.3): the checks tokensrv's token endpoint and every resource server
share, and the bounded replay cache a resource server keeps in memory.

`check_proof` does everything a proof alone can tell: its shape, `typ: dpop+jwt`, an asymmetric
`alg` from the caller's allow-list, a public `jwk` in the header (private members refused), the
signature (joserfc), `htm`, `htu` (normalised, without query and fragment), `iat` within the
window and, at a resource server, `ath`. What needs state is the caller's: the `jti` replay check
(tokensrv: Valkey; a resource server: `ReplayCache`), server nonces, and the key binding (the
proof's `jkt` against the token's `cnf.jkt`).
"""
from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwk, jws
from joserfc.errors import JoseError

from .claims import is_number
from .errors import InvalidDPoPProof, MalformedToken
from .jws import algorithms_for, b64url_decode, json_object

PROOF_TYPE = "dpop+jwt"
# what tokensrv accepts and advertises (dpop_signing_alg_values_supported): asymmetric only
ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
DEFAULT_WINDOW = 60  # seconds a proof's iat may lie before or after our clock
MAX_PROOF_BYTES = 8192
MAX_JTI_CHARS = 256


class _ProofRegistry(jws.JWSRegistry):
    max_header_length = 4096  # joserfc's 512 is too little for a header carrying an RSA jwk


_REGISTRY = _ProofRegistry(algorithms=ALGORITHMS)  # these only, "recommended" or not
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_SEGMENTS = re.compile(r"([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that passed every stateless check."""
    jkt: str  # RFC 7638 SHA-256 thumbprint of the header's jwk: what a token is bound to
    jti: str
    iat: float
    nonce: str | None


def check_proof(proof: str, *, method: str, url: str, now: float, window: float = DEFAULT_WINDOW,
                algorithms: Iterable[str] = ALGORITHMS, access_token: str | None = None) -> Proof:
    """The proof's key thumbprint and jti if `proof` is a valid DPoP proof for a `method` request
    to `url`; InvalidDPoPProof otherwise. With `access_token` (a resource request) `ath` must be
    its hash; without, `ath` is not looked at (a token request)."""
    allowed = frozenset(algorithms)
    header, key = _header_and_key(proof, allowed)
    try:
        with warnings.catch_warnings():  # joserfc warns on the name "EdDSA"; it is what clients send
            warnings.simplefilter("ignore")
            verified = jws.deserialize_compact(proof, key, algorithms=[header["alg"]], registry=_REGISTRY)
    except (JoseError, ValueError, TypeError):
        raise InvalidDPoPProof("the proof's signature does not verify with its jwk") from None
    try:
        claims = json_object(verified.payload, "proof payload", MAX_PROOF_BYTES)
    except MalformedToken as exc:  # one error class for every proof failure
        raise InvalidDPoPProof(exc.detail) from None
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if type(jti) is not str or not 0 < len(jti) <= MAX_JTI_CHARS:
        raise InvalidDPoPProof("jti is missing, not a string or too long")
    if type(htm) is not str or htm != method:
        raise InvalidDPoPProof("htm is not the request's method")
    if type(htu) is not str or (expected := normalise_htu(url)) is None or normalise_htu(htu) != expected:
        raise InvalidDPoPProof("htu is not the request's URL")
    if not is_number(iat) or abs(now - iat) > window:
        raise InvalidDPoPProof("iat is missing or outside the accepted window")
    nonce = claims.get("nonce")
    if nonce is not None and type(nonce) is not str:
        raise InvalidDPoPProof("nonce is not a string")
    if access_token is not None and not hmac.compare_digest(str(claims.get("ath", "")), token_hash(access_token)):
        raise InvalidDPoPProof("ath is missing or not the access token's hash")
    return Proof(key.thumbprint(), jti, iat, nonce)


def _header_and_key(proof: object, allowed: frozenset[str]) -> tuple[dict[str, Any], Any]:
    """The checked header and the public key it carries, before any signature work."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_BYTES:
        raise InvalidDPoPProof("the proof is not a string or too large")
    match = _SEGMENTS.fullmatch(proof)
    if match is None:
        raise InvalidDPoPProof("the proof is not a compact JWS")
    try:
        header = json_object(b64url_decode(match.group(1)), "proof header", MAX_PROOF_BYTES)
    except MalformedToken as exc:  # one error class for every proof failure
        raise InvalidDPoPProof(exc.detail) from None
    if type(header.get("typ")) is not str or header["typ"].lower() != PROOF_TYPE:
        raise InvalidDPoPProof("typ is not dpop+jwt")
    alg = header.get("alg")
    if type(alg) is not str or alg not in allowed:  # never none, never a symmetric algorithm
        raise InvalidDPoPProof(f"alg {str(alg)[:16]!r} is not accepted")
    public = header.get("jwk")
    if type(public) is not dict or public.get("kty") not in ("RSA", "EC", "OKP"):
        raise InvalidDPoPProof("the header has no asymmetric public jwk")
    if _PRIVATE_MEMBERS.intersection(public):
        raise InvalidDPoPProof("the header's jwk holds a private key")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a weak key is refused just below, not merely warned about
            key = jwk.import_key(public)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("the header's jwk is not a usable key") from None
    if alg not in algorithms_for(key.public_key):  # the key type must fit alg; RSA >= 2048 bits
        raise InvalidDPoPProof(f"the jwk cannot verify {alg}")
    return header, key


def normalise_htu(url: str) -> str | None:
    """An http(s) URL as RFC 9449 §4.3 compares it: RFC 3986 §6.2.2-6.2.3 normalised (scheme and
    host lowercased, the default port left out, percent-encoding in capitals and unreserved
    characters decoded, an empty path as "/"), without query and fragment. None: not an http(s)
    URL with a host (or with user information, which a proof should never carry)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{shown_port}{_PERCENT.sub(_percent, parts.path) or '/'}"


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def token_hash(access_token: str) -> str:
    """`ath`: base64url of the SHA-256 of the access token's ASCII (RFC 9449 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()


class ReplayCache:
    """The `jti`s of the proofs a resource server accepted, for as long as they could be replayed,
    in bounded memory.

    A proof is acceptable only while our clock is within `window` of its `iat`, so an entry is
    needed until `iat + window` and no longer. When `max_entries` are live, the entry with the
    oldest `iat` goes and every proof whose `iat` is not newer than it is refused from then on: the
    window narrows under load rather than letting an evicted proof be replayed.
    """

    def __init__(self, window: float = DEFAULT_WINDOW, max_entries: int = 100_000) -> None:
        self.window, self.max_entries = window, max_entries
        self._seen: set[str] = set()
        self._by_iat: list[tuple[float, str]] = []  # a heap
        self._floor = float("-inf")  # proofs with an iat at or below this are refused

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, jkt: str, jti: str, iat: float, now: float) -> bool:
        """Record a proof; False when it was seen before (a replay) or can no longer be told apart
        from one (its iat is at or below the floor)."""
        heap = self._by_iat
        while heap and heap[0][0] < now - self.window:  # can no longer be presented: forget
            self._seen.discard(heapq.heappop(heap)[1])
        entry = jkt + " " + jti
        if iat <= self._floor or entry in self._seen:
            return False
        while len(self._seen) >= self.max_entries:
            oldest, dropped = heapq.heappop(heap)
            self._seen.discard(dropped)
            self._floor = max(self._floor, oldest)
        if iat <= self._floor:
            return False
        self._seen.add(entry)
        heapq.heappush(heap, (iat, entry))
        return True
