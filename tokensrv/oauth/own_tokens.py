"""Tokens: RFC 9068 JWT access tokens, OIDC Core §2 ID tokens, opaque rotating refresh tokens."""
from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import secrets
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning

from tokensrv.errors import TemporarilyUnavailable
from tokensrv.oauth import Provider
from tokensrv.oauth.auth_methods import acr_of
from tokensrv.oauth.release import asked_for_id_token, client_claims, scope_claims
from tokensrv.store import Client, RefreshFamily, User
from tokensrv.verify.errors import MalformedToken
from tokensrv.verify.jws import unverified

ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1
REFRESH_TOKEN_BYTES = 16 + 32  # family id, then 256 random bits
MAX_OWN_TOKEN = 8192  # characters: far more than any token we sign


@dataclass(frozen=True)
class Subject:
    """Whom a token speaks for: a user (with a login time and session) or the client itself."""
    sub: str
    auth_time: int | None = None
    sid: str = ""
    roles: tuple[str, ...] = ()
    amr: tuple[str, ...] = ()  # how the user signed in (RFC 8176), when a browser sign-in says so
    acr: str = ""  # the acr to tell when not the amr's own (an essential acr met: browser/step_up.py)
    user: User | None = field(default=None, compare=False, repr=False)  # groups, attributes (oauth/release.py)

    @property
    def method_claims(self) -> dict[str, Any]:
        """`amr` and `acr` (oauth/auth_methods.py), if the sign-in is known."""
        return {"amr": list(self.amr), "acr": self.acr or acr_of(self.amr)} if self.amr else {}

    @classmethod
    def of_user(cls, user: User, auth_time: int, sid: str) -> Subject:
        return cls(user.sub, auth_time, sid, user.roles, user=user)


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(p: Provider, claims: dict[str, Any], typ: str) -> str:
    """RFC 7515 §7.1 compact serialisation, signed with the key's `cryptography` object.

    joserfc's jwt.encode rebuilds and re-checks the same header on every call, which costs as
    much as an ES256 signature; the header segment only changes with the key, so it is made once.
    joserfc still manages the keys and reads tokens.
    """
    key = p.keys.ring.signing
    if key is None:
        raise TemporarilyUnavailable("no signing key loaded")
    payload = json.dumps(claims, separators=(",", ":")).encode()
    signing_input = _header_segment(key.alg, key.kid, typ) + b"." + _b64_bytes(payload)
    return (signing_input + b"." + _b64_bytes(p.signature(key, signing_input))).decode()


@functools.lru_cache(maxsize=64)
def _header_segment(alg: str, kid: str, typ: str) -> bytes:
    return _b64_bytes(json.dumps({"alg": alg, "kid": kid, "typ": typ}, separators=(",", ":")).encode())


def _b64_bytes(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def access_claims(p: Provider, client: Client, subject: Subject, scope: str, jti: str,
                  now: int, jkt: str | None = None) -> dict[str, Any]:
    """RFC 9068 §2.2; with `jkt`, bound to that DPoP key (RFC 9449 §6.1: `cnf.jkt`)."""
    settings, client_id, rules = p.settings, client.client_id, p.claim_rules.current
    claims: dict[str, Any] = {
        "iss": settings.issuer, "sub": subject.sub, "aud": client.audience or client_id,
        "exp": now + settings.access_token_ttl, "iat": now, "jti": jti,
        "client_id": client_id, "scope": scope,
    }
    if subject.auth_time is not None:
        claims.update(auth_time=subject.auth_time, roles=list(subject.roles))
        if subject.sid:
            claims["sid"] = subject.sid
        claims.update(subject.method_claims)
        if subject.user is not None:
            claims.update(scope_claims(rules, subject.user, scope.split()))
    # the claim rules' extra claims of this client, split when read (tokensrv/claims.py); without
    # rules this is two attribute reads (settings and client_id are read once above to pay for them)
    extras = rules.clients
    if extras and client_id in extras:
        claims.update(client_claims(extras[client_id], subject.user))
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    return claims


def id_token(p: Provider, client: Client, subject: Subject, access_token: str, now: int,
             nonce: str | None, user_claims: Mapping[str, Any] | None = None) -> str:
    """OIDC Core §2 and §3.1.3.6 (at_hash: left half of SHA-256 of the access token);
    `user_claims`: what the `claims` parameter asked for (release.asked_for_id_token), under the
    protocol's own claims, which they never replace."""
    digest = hashlib.sha256(access_token.encode()).digest()
    claims: dict[str, Any] = {**(user_claims or {}),
        "iss": p.settings.issuer, "sub": subject.sub, "aud": client.client_id,
        "exp": now + p.settings.id_token_ttl, "iat": now, "auth_time": subject.auth_time,
        "at_hash": _b64(digest[: len(digest) // 2]),
    }
    if subject.sid:
        claims["sid"] = subject.sid
    claims.update(subject.method_claims)
    if nonce:
        claims["nonce"] = nonce
    return sign(p, claims, "JWT")


# ---- refresh tokens: base64url(family id || secret); only the SHA-256 digest is stored ----

def new_refresh_token(family_id: str | None = None) -> tuple[str, str, str]:
    """(token, family_id, digest). A rotation keeps the family and draws a new secret."""
    family = base64.urlsafe_b64decode(family_id + "==") if family_id else secrets.token_bytes(16)
    token = _b64(family + secrets.token_bytes(32))
    return token, _b64(family), refresh_digest(token)


def refresh_digest(token: str) -> str:
    return _b64(hashlib.sha256(token.encode()).digest())


def parse_refresh_token(token: str) -> str | None:
    """The family id a well-formed refresh token names, or None."""
    if len(token) != 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != REFRESH_TOKEN_BYTES or _b64(raw) != token:
        return None
    return _b64(raw[:16])


# ---- issuing ----

class Issued(NamedTuple):
    """A grant's answer, with what was put in it for the audit line and for revoking it again:
    the access token's claims and the refresh family (no need to decode the token just signed)."""
    response: dict[str, Any]
    claims: dict[str, Any]
    family_id: str | None = None


def bearer_response(access_token: str, ttl: int, scope: str, jkt: str | None = None) -> dict[str, Any]:
    """RFC 6749 §5.1; `token_type` DPoP for a token bound to a DPoP key (RFC 9449 §5)."""
    token_type = "Bearer" if jkt is None else "DPoP"
    return {"access_token": access_token, "token_type": token_type, "expires_in": ttl, "scope": scope}


def family_key(client: Client, jkt: str | None) -> str:
    """The DPoP key a new refresh family is bound to: RFC 9449 §5 binds a public client's refresh
    tokens to the proof's key; a confidential client's are bound by its authentication already."""
    return jkt if jkt is not None and client.is_public else ""


def refresh_idle(p: Provider, client: Client, jkt: str | None) -> int:
    """How long a refresh family may go unused. RFC 9700 §4.14.2: a browser application (a public
    client with allowed origins) keeps its refresh tokens where script runs; unless they are bound
    to its DPoP key (a proof with the request: family_key), they also die after a short idle time."""
    if client.is_public and client.allowed_origins and not family_key(client, jkt):
        return min(p.settings.refresh_token_ttl, p.settings.browser_refresh_idle)
    return p.settings.refresh_token_ttl


def issue_access(p: Provider, claims: dict[str, Any], scope: str, jkt: str | None = None) -> Issued:
    """The access token signed from `claims`, as a token response (of type DPoP with `jkt`)."""
    return Issued(bearer_response(sign(p, claims, ACCESS_TOKEN_TYPE), p.settings.access_token_ttl, scope, jkt),
                  claims)


async def issue_for_user(p: Provider, client: Client, subject: Subject, scope: str,
                         nonce: str | None = None, jkt: str | None = None,
                         id_token_claims: Collection[str] = ()) -> Issued:
    """Access token, a new refresh family when the client may refresh, an ID token for openid
    (with the user's claims of `id_token_claims` that the scope releases: the `claims` parameter);
    with `jkt`, the access token (and a public client's refresh family) bound to that DPoP key."""
    now, jti = p.now(), new_jti()
    claims = access_claims(p, client, subject, scope, jti, now, jkt)
    response = issue_access(p, claims, scope, jkt).response
    family_id = None
    if "refresh_token" in client.grant_types:
        token, family_id, digest = new_refresh_token()
        family = RefreshFamily(
            family_id=family_id, client_id=client.client_id, sub=subject.sub, scope=scope,
            created_ms=p.now_ms(), expires_at=now + p.settings.refresh_family_ttl, sid=subject.sid,
            auth_time=subject.auth_time or now, jkt=family_key(client, jkt), amr=subject.amr, acr=subject.acr)
        await p.store.refresh.create_family(family, digest, jti, claims["exp"], refresh_idle(p, client, jkt))
        response["refresh_token"] = token
    if "openid" in scope.split():
        asked = asked_for_id_token(p.claim_rules.current, subject.user, scope.split(), id_token_claims) \
            if id_token_claims and subject.user is not None else None
        response["id_token"] = id_token(p, client, subject, response["access_token"], now, nonce, asked)
    await note_session_client(p, client, subject, now)
    return Issued(response, claims, family_id)


async def note_session_client(p: Provider, client: Client, subject: Subject, now: int) -> None:
    """OIDC Back-Channel Logout: remember that `client` holds tokens of the session, for as long as
    they (or its refresh family) can live, so that ending the session tells it (oauth/backchannel.py).
    Only clients that can be told are noted: the others cost the token endpoint nothing."""
    if client.backchannel_logout_uri and subject.sid:
        s = p.settings
        until = now + max(s.session_ttl, s.refresh_family_ttl, s.max_token_ttl)
        await p.store.logouts.record_session_client(subject.sub, subject.sid, client.client_id, until, now)


# ---- reading our own tokens (revocation, introspection, userinfo, logout hints) ----

@contextlib.contextmanager
def _own_algorithm_names_accepted() -> Iterator[None]:
    """joserfc warns on every use of the name "EdDSA" (RFC 9864 prefers "Ed25519"); it is the
    name our EdDSA keys sign with, because verifiers know it. Nothing else is silenced.
    (warnings filters are process-wide: this runs on the event loop's thread only.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
        yield


def read_own_jwt(p: Provider, token: str, typ: str = ACCESS_TOKEN_TYPE) -> dict[str, Any] | None:
    """The claims of a token we signed with a published key, of the given `typ`; None otherwise.

    Expiry is not checked here: callers decide (revocation of an expired token is a no-op).
    """
    try:  # joserfc parses the header with an unbounded json.loads before any signature check
        unverified(token, MAX_OWN_TOKEN)
    except MalformedToken:
        return None
    ring = p.keys.ring
    try:
        with _own_algorithm_names_accepted():
            header = jwt.decode(token, ring.keyset, algorithms=ring.algorithms)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    typ = typ.lower()  # media types compare case-insensitively (RFC 7515 §4.1.9)
    if str(header.header.get("typ", "")).lower() not in (typ, "application/" + typ):
        return None
    claims = header.claims
    if claims.get("iss") != p.settings.issuer or not isinstance(claims.get("exp"), int):
        return None
    if not isinstance(claims.get("iat", 0), int) or not all(
            isinstance(claims.get(name, ""), str) for name in ("sub", "jti", "sid", "scope")):
        return None  # claims of the wrong type: not a token we issued (and int("...") would raise)
    return claims
