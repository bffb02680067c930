"""RFC 7009 token revocation, and the deny-list writes every other kind of revocation shares.

Every revocation lands in the deny-list (with a TTL) and in the revocation feed, in one
transaction, so verifiers following the feed see exactly what introspection sees.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from tokensrv.errors import UnauthorizedClient
from tokensrv.oauth import Provider, backchannel
from tokensrv.oauth.own_tokens import parse_refresh_token, read_own_jwt, refresh_digest
from tokensrv.oauth.params import require
from tokensrv.store import Client, RefreshFamily, Revocation, User


def user_is_current(user: User, created_ms: int) -> bool:
    """Whether something of this user created at `created_ms` (a family, a session) still stands.

    Nothing is deleted when a user is signed out: this check at each use is what refuses. Whatever
    was created in the not-before's own millisecond may predate the sign-out, so it is refused too
    (fail closed, as access tokens are for the not-before's whole second)."""
    return not user.disabled and created_ms > user.not_before_ms


async def deny_jtis(p: Provider, entries: Iterable[tuple[str, int]], family: str | None = None) -> None:
    now = p.now()
    revocations = [Revocation("jti", jti, exp, now) for jti, exp in entries if exp > now]
    if family:
        revocations.append(Revocation("family", family, now + p.settings.access_token_ttl, now))
    await p.store.denylist.revoke(revocations, now)


async def kill_family(p: Provider, family: RefreshFamily) -> None:
    outstanding = await p.store.refresh.revoke_family(family.family_id, p.now())
    await deny_jtis(p, outstanding, family=family.family_id)


async def revoke(p: Provider, client: Client, params: Mapping[str, str]) -> None:
    """RFC 7009 §2.1. Unknown, expired or malformed tokens are answered 200 like revoked ones (§2.2)."""
    token = require(params, "token")
    # the hint only orders the look-ups (§2.1); both kinds are always tried
    family_id = parse_refresh_token(token)
    if family_id is not None:
        found = await p.store.refresh.get_family(family_id, refresh_digest(token))
        # only the live token counts: a rotated or made-up one is already worthless (answered 200)
        if found is None or not found[1]:
            return
        _check_owner(client, found[0].client_id)
        await kill_family(p, found[0])
        return
    claims = read_own_jwt(p, token)
    if claims is None or claims["exp"] <= p.now():
        return
    _check_owner(client, claims.get("client_id"))
    await deny_jtis(p, [(str(claims["jti"]), claims["exp"])])


def _check_owner(client: Client, owner: object) -> None:
    """RFC 7009 §2.1: a client may revoke only the tokens issued to it."""
    if owner != client.client_id:
        raise UnauthorizedClient("token of another client",
                                 description="the token was not issued to this client")


async def revoke_session(p: Provider, sid: str) -> None:
    """Logout: every access token carrying the sid is deny-listed, and the session is marked ended
    (in the same transaction) for as long as a refresh family can live, so that none of its
    families is honoured again: the refresh grant and introspection check the mark at each use."""
    now = p.now()
    await p.store.denylist.revoke([Revocation("sid", sid, now + p.settings.max_token_ttl, now)], now,
                         ended_until=now + p.settings.refresh_family_ttl)


async def revoke_user(p: Provider, user: User, *, disabled: bool | None = None,
                      password_hash: str | None = None) -> User:
    """Sign out everywhere (also on password change, disable, remove): set the subject's not-before,
    and queue a back-channel logout for every client of every session of the user.

    Refresh families and SSO sessions compare their creation time with the not-before at their
    next use (the refresh grant reads the user in the rotation's round trip), so they are refused
    from now on and a family presented again is deleted then; the others expire. Access tokens
    issued up to this second are deny-listed by subject, in the deny-list and the feed.
    """
    now_ms = p.now_ms()
    changes: dict[str, object] = {"not_before_ms": now_ms}
    if disabled is not None:
        changes["disabled"] = disabled
    if password_hash is not None:
        changes["password_hash"] = password_hash

    def change(current: User) -> User:  # on the record as it is now: a change made meanwhile stays
        return dataclasses.replace(current, **changes)  # type: ignore[arg-type]

    # `user` may have been read long ago (before a slow password hash): never write it back
    updated = await p.store.users.update_user(user.sub, change) or change(user)
    now = now_ms // 1000
    await p.store.denylist.revoke([Revocation("sub", user.sub, now + p.settings.max_token_ttl, now)], now)
    await backchannel.user_signed_out(p, user.sub)  # every session of the user ended: tell their clients
    return updated
