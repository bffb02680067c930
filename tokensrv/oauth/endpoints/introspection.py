"""RFC 7662 token introspection, for authenticated (confidential) clients only.

A token is active only if we signed it, it has not expired, and nothing revoked it: its jti, its
session (deny-listed sid; for a refresh token, the session's `ended` mark), its subject's
not-before, or its user being disabled or removed. Refresh tokens are described only to the
client that holds them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensrv.oauth import Provider
from tokensrv.oauth.endpoints.revocation import user_is_current
from tokensrv.oauth.own_tokens import parse_refresh_token, read_own_jwt, refresh_digest
from tokensrv.oauth.params import require
from tokensrv.store import Client

INACTIVE: dict[str, Any] = {"active": False}
_PUBLIC_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time", "sid", "cnf",
                  "act", "amr", "acr")


async def introspect(p: Provider, client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    token = require(params, "token")
    family_id = parse_refresh_token(token)
    if family_id is not None:
        return await _refresh_token(p, client, family_id, token)
    claims = read_own_jwt(p, token)
    if claims is None or claims["exp"] <= p.now() or not await access_token_active(p, claims):
        return INACTIVE
    answer = {k: claims[k] for k in _PUBLIC_CLAIMS if k in claims}
    # RFC 9449 §6.2: a DPoP-bound token says so, and names its key in cnf
    answer.update(active=True, token_type="DPoP" if "cnf" in claims else "Bearer")
    return answer


async def access_token_active(p: Provider, claims: Mapping[str, Any]) -> bool:
    """The deny-list and user checks for a signed, unexpired access token."""
    jti, sid, sub = str(claims.get("jti", "")), str(claims.get("sid", "")), str(claims.get("sub", ""))
    jti_revoked, sid_revoked, not_before = await p.store.denylist.denied(jti, sid, sub)
    if jti_revoked or sid_revoked or int(claims.get("iat", 0)) <= not_before:
        return False
    if "auth_time" not in claims:
        return True  # the client's own token (client_credentials)
    user = await p.store.users.get_user(sub)  # not-before is in the deny-list; this catches disable/remove
    return user is not None and not user.disabled


async def _refresh_token(p: Provider, client: Client, family_id: str, token: str) -> dict[str, Any]:
    found = await p.store.refresh.get_family(family_id, refresh_digest(token))
    if found is None:
        return INACTIVE
    family, is_live_token = found
    if family.client_id != client.client_id or not is_live_token:
        return INACTIVE
    live_until = family.live_until(p.settings.refresh_family_ttl)
    if p.now() >= live_until:
        return INACTIVE
    user = await p.store.users.get_user(family.sub)
    if user is None or not user_is_current(user, family.created_ms):
        return INACTIVE
    if await p.store.refresh.session_ended(family.sid):  # logout: refused at its next use
        return INACTIVE
    answer = {"active": True, "token_type": "refresh_token", "scope": family.scope,
              "client_id": family.client_id, "sub": family.sub, "exp": live_until,
              "iat": family.created_ms // 1000, "iss": p.settings.issuer}
    if family.jkt:
        answer["cnf"] = {"jkt": family.jkt}
    return answer
