"""RFC 7523 §2.2 and §3, OIDC Core §9: client authentication with a signed JWT (private_key_jwt).

The assertion is read unverified only to learn which client it claims to be (`sub`, which must
equal `iss`). Then, for a client registered with private_key_jwt: the signature with one of that
client's keys and an algorithm of our allow-list (never `none`, never an HMAC: a public key is
no HMAC secret), `iss` = `sub` = client_id, `aud` naming us (the issuer, the token endpoint or
the endpoint it was sent to), `exp` required and at most MAX_LIFETIME ahead, `nbf`/`iat` not in
the future (LEEWAY for clocks), and a `jti` never seen before: it is kept in Valkey (SET NX)
until the assertion expires, so a replay within its lifetime is refused.

client_secret_jwt is not offered: a client secret is stored only as its SHA-256, and an HMAC
check needs the secret itself (see docs/guides/clients.md, "Signed client assertions").
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tokensrv.errors import InvalidClient
from tokensrv.oauth.clients.keys import KeysUnavailable, public_key_set
from tokensrv.oauth.endpoints.discovery import ASSERTION_ALGORITHMS
from tokensrv.oauth.params import for_log
from tokensrv.store import Client
from tokensrv.verify.errors import MalformedToken
from tokensrv.verify.jws import unverified

if TYPE_CHECKING:
    from tokensrv.oauth import Provider

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHMS = tuple(ASSERTION_ALGORITHMS)  # what discovery advertises, exactly
MAX_LIFETIME = 3600  # seconds an assertion may be valid ahead (authlib signs for 3600 by default)
LEEWAY = 30
MAX_ASSERTION = 8192
MAX_JTI = 256


def claimed_client_id(assertion: str) -> str:
    """Whom the assertion claims to be: its `sub`, which must equal its `iss` (RFC 7523 §3)."""
    claims = _unverified(assertion)[1]
    sub, iss = claims.get("sub"), claims.get("iss")
    if not isinstance(sub, str) or not sub or sub != iss:
        raise InvalidClient("client assertion: iss and sub must both be the client_id")
    return sub


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, parsed with bounded size and depth before joserfc sees them (its
    json.loads would recurse into whatever an unauthenticated caller nests)."""
    try:
        return unverified(assertion, MAX_ASSERTION)
    except MalformedToken as exc:
        raise InvalidClient(f"malformed client assertion: {exc.detail}") from None


async def verify(p: Provider, client: Client, assertion: str, audiences: Sequence[str]) -> None:
    """Raise InvalidClient unless `assertion` authenticates `client`; then its jti is spent."""
    client_id = client.client_id
    if client.token_endpoint_auth_method != "private_key_jwt":
        raise InvalidClient(f"client {client_id!r} does not authenticate with private_key_jwt")
    header, _ = _unverified(assertion)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in SIGNING_ALGORITHMS:
        raise InvalidClient(f"client assertion alg {for_log(str(alg))} not allowed")
    if kid is not None and not isinstance(kid, str):
        raise InvalidClient("client assertion kid is not a string")
    keys = await _keys_of(p, client, kid)
    try:
        with _eddsa_name_accepted():
            token = jwt.decode(assertion, keys, algorithms=[str(alg)])
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidClient(f"client assertion signature: {type(exc).__name__}") from None
    claims, now = token.claims, p.now()
    registry = JWTClaimsRegistry(
        now=now, leeway=LEEWAY, iss={"essential": True, "value": client_id},
        sub={"essential": True, "value": client_id}, aud={"essential": True, "values": list(audiences)},
        exp={"essential": True}, jti={"essential": True})
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidClient(f"client assertion claims: {exc.error}: {exc.description}") from None
    exp, jti = claims["exp"], claims["jti"]
    if not isinstance(exp, int) or exp > now + MAX_LIFETIME + LEEWAY:
        raise InvalidClient(f"client assertion exp more than {MAX_LIFETIME} s ahead")
    if not isinstance(jti, str) or len(jti) > MAX_JTI:
        raise InvalidClient("client assertion jti is not a short string")
    if not await p.store.nonces.use_assertion_jti(client_id, jti, exp - now + LEEWAY):
        raise InvalidClient(f"client assertion replayed (jti {for_log(jti)})")


async def _keys_of(p: Provider, client: Client, kid: str | None) -> KeySet:
    try:
        if client.jwks is not None:
            return public_key_set(client.jwks)
        if client.jwks_uri and p.client_keys is not None:
            return await p.client_keys.keys(client.jwks_uri, kid)
    except (ValueError, KeysUnavailable) as exc:
        raise InvalidClient(f"keys of client {client.client_id!r}: {exc}") from None
    raise InvalidClient(f"client {client.client_id!r} has no keys")


@contextlib.contextmanager
def _eddsa_name_accepted() -> Iterator[None]:
    """joserfc warns on the name "EdDSA" (RFC 9864 prefers "Ed25519"), which is what clients send
    and what discovery advertises. (Filters are process-wide: this runs on the event loop only.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
        yield
