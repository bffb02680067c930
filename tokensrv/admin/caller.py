"""Who calls the admin API: the bearer token of each request checked, and its client read again.

A token is accepted when it is one of our access tokens (our keys' signature, our issuer), not
expired, not on the deny-list, not DPoP-bound (no `cnf`: the admin API takes no proofs), issued by
the client_credentials grant for the admin API (`aud` the issuer's `/admin`, `sub` its client,
scope tokensrv:admin) no earlier than its client was created, and that client still exists and is
still marked admin: the record is read at every request, so unmarking or removing a client ends
its tokens' use at once. A store that cannot answer fails the request (503), never lets it through.

Failed authentications are counted per address with the client lockout's counters (a window of
TOKENSRV_CLIENT_AUTH_FAILURE_WINDOW, TOKENSRV_CLIENT_AUTH_MAX_FAILURES of them), then 429 for
the failures from that address; the token is checked first, so a good admin token from a locked
address still works (it is no guess).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tokensrv.errors import InsufficientScope, InvalidToken, SlowDown
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.metadata import ADMIN_SCOPE
from tokensrv.oauth.endpoints.introspection import access_token_active
from tokensrv.oauth.grants.client_credentials import ADMIN_AUDIENCE_PATH
from tokensrv.oauth.own_tokens import read_own_jwt
from tokensrv.store import Client

_LOCK_KEY = ADMIN_SCOPE  # no client id has a colon: the lockout pair cannot be a client's


class NoToken(InvalidToken):
    """RFC 6750 §3.1: no credentials at all: the challenge without an error code."""
    headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": 'Bearer realm="tokensrv"'})


class NotAdmin(InsufficientScope):
    """RFC 6750 §3.1: a good token that may not use the admin API; the scope it needs named."""
    headers: Mapping[str, str] = MappingProxyType(
        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{ADMIN_SCOPE}"'})


async def admin_caller(p: Provider, authorization: str | None, remote: str) -> Client:
    """The admin client a request's `Authorization: Bearer` token speaks for, or the RFC 6750 error."""
    if authorization is None:
        raise NoToken("no Authorization header")
    pair = (_LOCK_KEY, remote)
    try:  # verified first: a good admin token is no guess, and is never locked out
        return await _caller(p, authorization)
    except InvalidToken:
        locked_for = p.client_lockouts.remaining(pair, p.now())
        if locked_for:
            raise SlowDown(locked_for, "admin authentication locked out",
                           what="failed admin authentications") from None
        await _count_failure(p, pair)
        raise


async def _caller(p: Provider, authorization: str) -> Client:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("not a bearer token")
    claims = read_own_jwt(p, token.strip())
    if claims is None or claims["exp"] <= p.now() or not await access_token_active(p, claims):
        raise InvalidToken("invalid, expired or revoked admin token")
    if "cnf" in claims:  # RFC 9449 §7.1: a DPoP-bound token is no bearer token (the admin API takes no proof)
        raise InvalidToken("a DPoP-bound token presented as a bearer token")
    client_id = str(claims.get("client_id", ""))
    if claims.get("aud") != p.settings.issuer + ADMIN_AUDIENCE_PATH or claims.get("sub") != client_id \
            or ADMIN_SCOPE not in str(claims.get("scope", "")).split():
        raise NotAdmin(f"a token of client {client_id!r} without the admin scope")
    client = await p.store.clients.get_client(client_id)
    if client is None or int(claims.get("iat", 0)) < client.created_at:  # or is another of that id
        raise InvalidToken(f"the admin token's client {client_id!r} is gone")
    if not client.admin:
        raise NotAdmin(f"client {client_id!r} is not an admin client (any more)")
    return client


async def _count_failure(p: Provider, pair: tuple[str, str]) -> None:
    """As the client lockout counts (oauth/clients/authentication.py), per address alone."""
    limit, window, now = p.settings.client_auth_max_failures, p.settings.client_auth_failure_window, p.now()
    start = now - now % window
    [(failures, _ttl)] = await p.store.limits.count_attempt([f"admin:{pair[1]}:{start}"], window)
    if failures < limit:
        return
    p.client_lockouts.lock(pair, start + window, now)
    if failures > limit:
        raise SlowDown(start + window - now, "too many failed admin authentications",
                       what="failed admin authentications")
