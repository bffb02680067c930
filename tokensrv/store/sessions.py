"""Browser sign-in in Valkey: SSO sessions, pending logins, pushed requests, authorization codes.

Keys (store/keyspace.py; one key per command or script, so Cluster-safe):
  sso:<sha256 of the cookie>  JSON BrowserSession, until its idle or absolute end
  authreq:<request id>         JSON PendingLogin, for the login page's few minutes
  par:<digest>                 JSON PushedRequest (RFC 9126), until it is used or expires
  code:<sha256 of the code>    hash: r the AuthCode, s its state, t what it issued
Records also carry their own ends, checked against the server's (injected) clock.
"""
from __future__ import annotations

import json

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection
from tokensrv.store.records import AuthCode, BrowserSession, CodeReplay, PendingLogin, PushedRequest


class SessionStore:
    """`store.sessions`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._take_code = conn.script(scripts.TAKE_CODE)
        self._record_code = conn.script(scripts.RECORD_CODE)

    # ---- SSO sessions ----

    async def put_session(self, digest: str, session: BrowserSession, idle_ttl: int) -> None:
        await self.redis.set(keyspace.browser_session(digest), json.dumps(session.to_json()),
                             ex=_session_ttl(session, idle_ttl))

    async def get_session(self, digest: str) -> BrowserSession | None:
        raw = await self.redis.get(keyspace.browser_session(digest))
        return BrowserSession.from_json(json.loads(raw)) if raw else None

    async def touch_session(self, digest: str, session: BrowserSession, idle_ttl: int) -> None:
        """Record a use; `xx`: a session deleted meanwhile (logout) is not brought back."""
        await self.redis.set(keyspace.browser_session(digest), json.dumps(session.to_json()),
                             ex=_session_ttl(session, idle_ttl), xx=True)

    async def take_session(self, digest: str) -> BrowserSession | None:
        raw = await self.redis.getdel(keyspace.browser_session(digest))
        return BrowserSession.from_json(json.loads(raw)) if raw else None

    # ---- authorization requests: waiting for the login page, or pushed (PAR) ----

    async def put_pending_login(self, request_id: str, pending: PendingLogin, ttl: int) -> None:
        await self.redis.set(keyspace.pending_login(request_id), json.dumps(pending.to_json()), ex=ttl)

    async def get_pending_login(self, request_id: str) -> PendingLogin | None:
        raw = await self.redis.get(keyspace.pending_login(request_id))
        return PendingLogin.from_json(json.loads(raw)) if raw else None

    async def take_pending_login(self, request_id: str) -> PendingLogin | None:
        """Atomically: of two submissions of one login form, one finishes it."""
        raw = await self.redis.getdel(keyspace.pending_login(request_id))
        return PendingLogin.from_json(json.loads(raw)) if raw else None

    async def put_pushed_request(self, digest: str, pushed: PushedRequest, ttl: int) -> None:
        await self.redis.set(keyspace.pushed_request(digest), json.dumps(pushed.to_json()), ex=ttl)

    async def take_pushed_request(self, digest: str) -> PushedRequest | None:
        """Atomically (GETDEL): a request_uri is used once."""
        raw = await self.redis.getdel(keyspace.pushed_request(digest))
        return PushedRequest.from_json(json.loads(raw)) if raw else None

    # ---- authorization codes ----

    async def put_code(self, digest: str, code: AuthCode, ttl: int) -> None:
        key = keyspace.code(digest)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"r": json.dumps(code.to_json()), "s": "fresh"})
            pipe.expire(key, ttl)
            await pipe.execute()

    async def take_code(self, digest: str, replay_ttl: int) -> AuthCode | CodeReplay | None:
        """Redeem a code (one Lua call: of two concurrent redemptions exactly one wins).

        The key then stays `replay_ttl` seconds as a marker, so a second presentation is seen as a
        replay and can name what the first one issued.
        """
        outcome, value = await self._take_code(keys=[keyspace.code(digest)], args=[replay_ttl])
        if outcome == "unknown":
            return None
        if outcome == "ok":
            return AuthCode.from_json(json.loads(value))
        family_id, _, rest = value.partition(" ")
        jti, _, exp = rest.partition(" ")
        return CodeReplay(family_id if family_id not in ("", "-") else None, jti or None, int(exp or 0))

    async def record_code_tokens(self, digest: str, family_id: str | None, jti: str, exp: int) -> bool:
        """Note what a redemption issued; False when a replay came first (the caller revokes it)."""
        recorded = await self._record_code(keys=[keyspace.code(digest)],
                                           args=[f"{family_id or '-'} {jti} {exp}"])
        return bool(recorded)


def _session_ttl(session: BrowserSession, idle_ttl: int) -> int:
    """Seconds from its last use to its idle or absolute end (relative: Valkey's clock may differ)."""
    return max(1, min(idle_ttl, session.expires_at - session.last_seen))
