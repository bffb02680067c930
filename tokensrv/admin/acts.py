"""What the admin API does that no CLI command does: a user's sessions listed and ended, and a
user's fields replaced whole (PATCH). The sessions are the account page's (oauth/browser/account/
sso.py): the live ones from the per-user index, each ended as logout ends it (back-channel logout
to its applications)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from tokensrv.admin.operations import (
    Missing,
    check_claims,
    check_email,
    find_user,
    set_disabled,
    user_view,
)
from tokensrv.oauth import Provider
from tokensrv.oauth.browser.account import sso
from tokensrv.store import User


async def sessions_view(p: Provider, username: str) -> list[dict[str, Any]]:
    """The user's live SSO sessions, last used first; times in epoch seconds, as every JSON view."""
    user = await find_user(p, username)
    views = []
    for _digest, s in sorted(await sso.live(p, user), key=lambda found: -found[1].last_seen):
        views.append({"sid": s.sid, "created_at": s.created_ms // 1000, "auth_time": s.auth_time,
                      "last_seen_at": s.last_seen, "expires_at": s.expires_at, "amr": list(s.amr),
                      "address": s.address, "device": sso.device_of(s.agent),
                      "clients": await p.store.sessions.session_clients(s.sid)})
    return views


async def end_sessions(p: Provider, username: str, sid: str | None = None) -> dict[str, Any]:
    """End the user's live session `sid` (Missing if it is none of theirs), or all of them."""
    user = await find_user(p, username)
    found = [digest for digest, s in await sso.live(p, user) if sid is None or s.sid == sid]
    ended = [digest for digest in found if await sso.end_session(p, user, digest)]
    if sid is not None and not ended:  # not theirs, not live, or ended a moment ago by another
        raise Missing(f"{username} has no live session {sid!r}")
    return {"username": user.username, "sub": user.sub, "ended": len(ended)}


USER_FIELDS = ("email", "roles", "groups", "attributes", "disabled")


async def replace_user_fields(p: Provider, username: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Each named field replaced whole (lists and attributes too), against the record as it is at
    the write (store update_json's WATCH loop: a concurrent change of another field is kept). The
    sub never changes; disabling ends every session and token as `user disable` does."""
    check_email(fields.get("email"))
    user = await find_user(p, username)
    check_claims(_replaced(user, fields))  # refused before anything is written
    updated = await p.store.users.update_user(user.sub, lambda now: check_claims(_replaced(now, fields)))
    if updated is None:
        raise Missing(f"no user {username!r}")
    if "disabled" in fields and fields["disabled"] != updated.disabled:
        return await set_disabled(p, username, bool(fields["disabled"]))
    return user_view(updated)


def _replaced(user: User, fields: dict[str, Any]) -> User:
    changed: dict[str, Any] = {}
    if "email" in fields:
        changed["email"] = fields["email"]
    for name in ("roles", "groups"):
        if name in fields:
            changed[name] = tuple(dict.fromkeys(fields[name]))
    if "attributes" in fields:
        changed["attributes"] = tuple(sorted(fields["attributes"].items()))
    return replace(user, **changed)
