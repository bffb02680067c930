"""Browser sign-in in Valkey: SSO sessions, pending logins, pushed requests, authorization codes.

Keys (store/keyspace.py; one key per command or script, so Cluster-safe):
  sso:<sha256 of the cookie>  JSON BrowserSession, until its idle or absolute end
  user-sso:<sub>               sorted set: the user's session digests by absolute end (the account
                               page lists and ends them); pruned of ended ones at each write, kept to
                               the MAX_INDEXED latest, so it stays bounded: a session
                               trimmed from it is ended (the index stays complete)
  sso-apps:<sid>               set: the client_ids a session issued codes to, at most MAX_APPS
  authreq:<request id>         JSON PendingLogin, for the login page's few minutes
  par:<digest>                 JSON PushedRequest (RFC 9126), until it is used or expires
  code:<sha256 of the code>    hash: r the AuthCode, s its state, t what it issued
Records also carry their own ends, checked against the server's (injected) clock.
"""
from __future__ import annotations

import json
from typing import Any

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection
from tokensrv.store.records import AuthCode, BrowserSession, CodeReplay, PendingLogin, PushedRequest

# sessions per user: a script signing in in a loop cannot grow the index; past it the earliest to
# end is ended, so that "sign out of all other sessions" (and the account page) misses none
MAX_INDEXED = 100
MAX_APPS = 32  # applications noted per session


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
        # another key (another Cluster slot): its own transaction
        index = keyspace.user_sessions(session.sub)
        for evicted in await add_to_index(self.redis, index, digest, session.expires_at, session.last_seen):
            await self.redis.delete(keyspace.browser_session(evicted))  # one slot each (Cluster)

    async def session_digests(self, sub: str, now: int) -> list[str]:
        """The user's sessions not past their absolute end (some may have ended otherwise)."""
        found = await self.redis.zrangebyscore(keyspace.user_sessions(sub), now, "+inf")
        return [d.decode() if isinstance(d, bytes) else str(d) for d in found]

    async def unindex_session(self, sub: str, digest: str) -> None:
        await self.redis.zrem(keyspace.user_sessions(sub), digest)

    async def note_session_client(self, sid: str, client_id: str, until: int) -> None:
        """A code issued to `client_id` under the session `sid` (bounded: past MAX_APPS, no more)."""
        key = keyspace.session_clients(sid)
        if await self.redis.scard(key) >= MAX_APPS:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, client_id)
            pipe.expireat(key, until)
            await pipe.execute()

    async def session_clients(self, sid: str) -> list[str]:
        found = await self.redis.smembers(keyspace.session_clients(sid))
        return sorted(c.decode() if isinstance(c, bytes) else str(c) for c in found)

    async def get_session(self, digest: str) -> BrowserSession | None:
        raw = await self.redis.get(keyspace.browser_session(digest))
        return BrowserSession.from_json(json.loads(raw)) if raw else None

    async def touch_session(self, digest: str, session: BrowserSession, idle_ttl: int) -> None:
        """Record a use; `xx`: a session deleted meanwhile (logout) is not brought back."""
        await self.redis.set(keyspace.browser_session(digest), json.dumps(session.to_json()),
                             ex=_session_ttl(session, idle_ttl), xx=True)

    async def take_session(self, digest: str) -> BrowserSession | None:
        raw = await self.redis.getdel(keyspace.browser_session(digest))
        if not raw:
            return None
        session = BrowserSession.from_json(json.loads(raw))
        await self.unindex_session(session.sub, digest)
        return session

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


async def add_to_index(redis: Any, key: str, member: str, until: int, now: int) -> list[str]:
    """`queue_index` in a transaction of its own: the members trimmed, for the caller to end."""
    async with redis.pipeline(transaction=True) as pipe:
        queue_index(pipe, key, member, until, now)
        return trimmed(await pipe.execute())


def queue_index(pipe: Any, key: str, member: str, until: int, now: int) -> None:
    """Add `member` to a per-user sorted set scored by its end: the ended ones go, and beyond
    MAX_INDEXED the earliest to end (read in the same transaction: `trimmed` names them, and the
    caller ends them); the key lives as long as its latest member. Queue it last."""
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.zadd(key, {member: until})
    pipe.zrange(key, 0, -MAX_INDEXED - 1)
    pipe.zremrangebyrank(key, 0, -MAX_INDEXED - 1)
    pipe.expireat(key, until, nx=True)
    pipe.expireat(key, until, gt=True)


def trimmed(results: list[Any]) -> list[str]:
    """The members `queue_index` took out of the index over MAX_INDEXED, from the transaction's
    results (its ZRANGE is the fourth command from the end)."""
    return [m.decode() if isinstance(m, bytes) else str(m) for m in results[-4]]


def _session_ttl(session: BrowserSession, idle_ttl: int) -> int:
    """Seconds from its last use to its idle or absolute end (relative: Valkey's clock may differ)."""
    return max(1, min(idle_ttl, session.expires_at - session.last_seen))
