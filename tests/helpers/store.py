"""Refresh families and rotations as the store contract tests make them, on any store topology."""
from __future__ import annotations

from tokensrv.oauth.own_tokens import refresh_digest
from tokensrv.store import BrowserSession, RefreshFamily, RotateOutcome
from tokensrv.store.redis import RedisStore

NOW = 1_800_000_000


D = [refresh_digest(f"token {i}") for i in range(10)]  # digests of refresh tokens, as callers hold them


async def rotate(store: RedisStore, family_id: str, presented: str, new_digest: str, client_id: str, now: int,
                 jti: str, jti_exp: int, idle_ttl: int, grace: int) -> RotateOutcome:
    """The rotation as the refresh grant makes it (the user and session reads aside)."""
    outcome, _, _ = await store.refresh.rotate_with_user(family_id, presented, new_digest, client_id, now,
                                                 jti, jti_exp, idle_ttl, grace)
    return outcome


def family(family_id: str = "fam1", sub: str = "sub1", sid: str = "", ttl: int = 1000) -> RefreshFamily:
    return RefreshFamily(family_id, "app", sub, "read", NOW * 1000, NOW + ttl, sid=sid, auth_time=NOW)


def session(sub: str, n: int, expires_at: int) -> BrowserSession:
    return BrowserSession(sid=f"sid{n}", sub=sub, auth_time=NOW, created_ms=NOW * 1000, last_seen=NOW,
                          expires_at=expires_at)
