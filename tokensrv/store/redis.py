"""The Valkey/Redis implementation of every store interface.

Key names: store/keyspace.py (every one is built there).

No index lists the families of a user or of a session: signing a user out (their not-before) and
ending a session (its `ended` marker) are enforced where a family is used (the refresh grant reads
both with the rotation; introspection checks them too), and the families expire.

Valkey Cluster: every Lua script and MULTI/EXEC touches one hash slot. Most touch one key. The
deny-list keys carry the feed's name as their hash tag, so a revocation (its deny-list keys and
its feed entries: one script) and the deny-list check (one MGET) are in the feed's slot: one
primary takes every revocation, and a verifier's load scans that primary only. The refresh grant
reads the family, its user and the session's `ended` marker: three slots (a family is found by its
id alone, so it cannot share the user's tag). On one server the rotation script reads all three
(one round trip); on Cluster the script checks and rotates the family, then the user and the
marker are read from their nodes at once (two round trips). Only the family's part is atomic.
Multi-key admin writes (a record and its index set) are ordered so that the index set is a
superset of the records, which list_clients/list_users tolerate.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, WatchError

from tokensrv.observability import events
from tokensrv.store import (
    AuthCode,
    BrowserSession,
    Client,
    CodeReplay,
    Conflict,
    PendingLogin,
    PushedRequest,
    RefreshFamily,
    Reused,
    Revocation,
    Rotated,
    RotateOutcome,
    User,
    keyspace,
    scripts,
    upgrade,
)
from tokensrv.store.backchannel import BackchannelQueue
from tokensrv.store.device import DeviceAuthorizations
from tokensrv.store.durable import DURABLE_WRITE_TIMEOUT_MS, require_replicas
from tokensrv.store.registration import Registrations
from tokensrv.verify.store_url import StoreClient, node_client

log = logging.getLogger("tokensrv.store")
# A revocation is acknowledged only once the store's AOF has it on disk (WAITAOF: see
# RedisStore._durably); every write, once TOKENSRV_DURABLE_REPLICAS replicas have it (store/durable.py).

FEED_RETENTION = 86400  # seconds the feed keeps entries at least: a verifier away longer resyncs
FEED_RETENTION_SLACK = 60  # seconds a feed entry outlives the longest-lived thing it denies

# The scripts are store/lua/*.lua (store/scripts.py): a refresh family's layout is lua/family.lua.


def _jti_list(raw: str, now: int | None = None) -> tuple[tuple[str, int], ...]:
    entries = []
    for entry in filter(None, raw.split(";")):
        jti, _, exp = entry.partition(" ")
        if now is None or int(exp) > now:
            entries.append((jti, int(exp)))
    return tuple(entries)



class RedisStore(DeviceAuthorizations, BackchannelQueue, Registrations):  # store/device.py, backchannel.py, registration.py
    """The store on one Valkey server (or a Sentinel-managed primary) or on a Valkey Cluster."""

    def __init__(self, redis: StoreClient, durable_replicas: int = 0) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self.durable_replicas = durable_replicas  # TOKENSRV_DURABLE_REPLICAS
        if durable_replicas:  # every write then waits for them, on the connection that made it
            require_replicas(redis, durable_replicas)
        self._rotate = redis.register_script(scripts.ROTATE)
        self._read_family = redis.register_script(scripts.READ_FAMILY)
        self._delete_family = redis.register_script(scripts.DELETE_FAMILY)
        self._release = redis.register_script(scripts.RELEASE_LOCK)
        self._decrement = redis.register_script(scripts.DECREMENT_IF_PRESENT)
        self._take_token = redis.register_script(scripts.TAKE_TOKEN)
        self._aof: bool | None = None  # does the store append to an AOF? asked once

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def upgrade_layout(self) -> int:
        """What an earlier release wrote, converted once per store (store/upgrade.py)."""
        return await upgrade.upgrade_layout(self.redis)

    # ---- clients ----
    async def add_client(self, client: Client) -> None:
        key = keyspace.client(client.client_id)
        if not await self.redis.set(key, json.dumps(client.to_json()), nx=True):
            raise Conflict(f"client {client.client_id!r} already exists")
        await self.redis.sadd(keyspace.CLIENTS, client.client_id)
        await self.redis.publish(keyspace.CLIENT_CHANGES, client.client_id)  # a cache may hold its absence

    async def get_client(self, client_id: str) -> Client | None:
        raw = await self.redis.get(keyspace.client(client_id))
        return Client.from_json(json.loads(raw)) if raw else None

    async def list_clients(self) -> list[Client]:
        ids = sorted(str(i) for i in await self.redis.smembers(keyspace.CLIENTS))
        found = [await self.get_client(i) for i in ids]
        return [c for c in found if c is not None]

    async def remove_client(self, client_id: str) -> bool:
        # Two slots on Cluster, so no MULTI: the record goes first (it stops authenticating at
        # once), its id last, so the id set only ever holds too many ids (list_clients skips them).
        deleted = await self.redis.delete(keyspace.client(client_id))
        await self.redis.srem(keyspace.CLIENTS, client_id)
        await self.redis.publish(keyspace.CLIENT_CHANGES, client_id)
        return bool(deleted)

    # ---- users ----
    async def add_user(self, user: User) -> None:
        name_key = keyspace.username(user.username)
        if not await self.redis.set(name_key, user.sub, nx=True):
            raise Conflict(f"user {user.username!r} already exists")
        # no MULTI (three slots on Cluster): the sub is listed before its record exists, so the
        # set only ever holds too many subs (list_users skips them)
        await self.redis.sadd(keyspace.USERS, user.sub)
        await self.redis.set(keyspace.user(user.sub), json.dumps(user.to_json()))

    async def get_user(self, sub: str) -> User | None:
        raw = await self.redis.get(keyspace.user(sub))
        return User.from_json(json.loads(raw)) if raw else None

    async def find_user(self, username: str) -> User | None:
        sub = await self.redis.get(keyspace.username(username))
        return await self.get_user(str(sub)) if sub else None

    async def save_user(self, user: User) -> None:
        await self.redis.set(keyspace.user(user.sub), json.dumps(user.to_json()))

    async def rehash_password(self, user: User, new_hash: str) -> bool:
        """Store `new_hash` for `user` unless its record changed since it was read. A login that
        upgrades a hash must never write back what an administrator changed meanwhile (a sign-out's
        not-before, a new password, a disable): False then, and the upgrade waits for a next login."""
        key = keyspace.user(user.sub)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if not raw or User.from_json(json.loads(raw)) != user:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                pipe.set(key, json.dumps(dataclasses.replace(user, password_hash=new_hash).to_json()))
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def remove_user(self, user: User) -> None:
        # the record first: from then on the user can neither sign in nor refresh; the name and
        # the listing after (a record, its name and the set are three slots on Cluster)
        await self.redis.delete(keyspace.user(user.sub))
        await self.redis.delete(keyspace.username(user.username))
        await self.redis.srem(keyspace.USERS, user.sub)

    async def list_users(self) -> list[User]:
        subs = sorted(str(s) for s in await self.redis.smembers(keyspace.USERS))
        found = [await self.get_user(s) for s in subs]
        return sorted((u for u in found if u is not None), key=lambda u: u.username.casefold())

    # ---- refresh-token families (token digests as callers hold them: base64url text) ----
    async def create_family(self, family: RefreshFamily, token_digest: str, jti: str, jti_exp: int,
                            idle_ttl: int) -> None:
        key = keyspace.family(family.family_id)
        created = family.created_ms // 1000
        idle_end = min(created + idle_ttl, family.expires_at)
        record: list[bytes | str | int] = [  # the positions lua/family.lua names
            _raw_digest(token_digest), f"{jti}+{jti_exp - created}",
            f"{family.client_id} {family.jkt}" if family.jkt else family.client_id,
            _pack_sub(family.sub), family.scope, family.sid, family.created_ms, family.expires_at,
            created - family.auth_time]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *record)
            pipe.expireat(key, idle_end)
            await pipe.execute()

    async def rotate_with_user(self, family_id: str, presented: str, new_digest: str, client_id: str,
                               now: int, jti: str, jti_exp: int, idle_ttl: int, grace: int, *,
                               scope: Sequence[str] = (), max_life: int = 0, jkt: str = "",
                               ) -> tuple[RotateOutcome, User | None, bool]:
        """The refresh grant's store call: check the family (alive, also by `max_life` seconds
        after its creation when given; this client's; if bound to a DPoP key, to `jkt`, the
        thumbprint of the request's proof key; granted every `scope` token) and rotate its
        token, in one script, which answers a refusal without writing anything. After a rotation,
        also the family's user and whether its SSO session has ended (not atomically with it): on
        one server the script reads them (one round trip); on Cluster they are other slots, read
        at once from their nodes after the script (two)."""
        args = [*_rotate_args(presented, new_digest, client_id, now, jti, jti_exp, idle_ttl, grace),
                max_life, " ".join(scope), jkt]
        if not self.cluster:
            args += [keyspace.USER_PREFIX, keyspace.ENDED_PREFIX]
        reply = await self._rotate(keys=[keyspace.family(family_id)], args=args)
        outcome = _rotation(family_id, reply, now)
        if not isinstance(outcome, Rotated):
            return outcome, None, False
        if self.cluster:
            raw_user, ended = await asyncio.gather(self.redis.get(keyspace.user(outcome.family.sub)),
                                                   self.session_ended(outcome.family.sid))
        else:
            raw_user, ended = reply[3], reply[4] == 1
        return outcome, User.from_json(json.loads(raw_user)) if raw_user else None, ended

    async def get_family(self, family_id: str, token_digest: str = "") -> tuple[RefreshFamily, bool] | None:
        """The family while Valkey keeps it (callers check `live_until()` against their own
        clock), and whether `token_digest` is its live token's."""
        reply = await self._read_family(keys=[keyspace.family(family_id)],
                                        args=[_raw_digest(token_digest) if token_digest else ""])
        if not reply:
            return None
        return _family(family_id, dict(zip(reply[1::2], reply[2::2]))), reply[0] == 1

    async def revoke_family(self, family_id: str, now: int) -> tuple[tuple[str, int], ...]:
        raw = await self._delete_family(keys=[keyspace.family(family_id)])
        return _jti_list(raw or "", now)

    # ---- DPoP (RFC 9449): proofs seen, and the secret server nonces are derived from ----
    async def dpop_proof_fresh(self, jkt: str, jti: str, ttl: int) -> bool:
        """Record a proof's jti (with its key: jtis are the clients' choice) for `ttl` seconds;
        False if it was recorded before: a replay. One key, SET NX: any instance sees it."""
        digest = hashlib.sha256(f"{jkt} {jti}".encode()).digest()
        key = keyspace.dpop_proof(base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
        return bool(await self.redis.set(key, "1", nx=True, ex=max(1, ttl)))

    async def dpop_nonce_secret(self) -> str:
        """The secret every instance derives DPoP nonces from: made by the first instance that
        needs it (SET NX), then only read. No TTL: the nonces rotate by their time window."""
        key = keyspace.DPOP_NONCE_SECRET
        await self.redis.set(key, secrets.token_urlsafe(32), nx=True)
        return str(await self.redis.get(key))

    async def session_ended(self, sid: str) -> bool:
        """Whether the SSO session `sid` ended (logout) within the refresh family lifetime."""
        return bool(sid) and bool(await self.redis.exists(keyspace.ended(sid)))

    # ---- deny-list and feed ----
    async def revoke(self, entries: Sequence[Revocation], now: int, ended_until: int = 0) -> None:
        """Deny-list entries (each with a TTL) and append them to the feed, in one script.

        With `ended_until`, each `sid` entry also marks its session ended until then, so that no
        refresh family of the session is honoured again. The marks are written first, each in its
        own slot: should the deny-list write fail, the logout fails but its session is ended
        anyway (fail closed), and a retry writes both again.
        """
        if not entries:
            return
        markers = [keyspace.ended(e.value) for e in entries if e.kind == "sid"] if ended_until else []
        ended_at = max(ended_until, now + 1)
        if self.cluster:  # the markers are in their sessions' slots, each maybe on another primary
            for marker in markers:
                def mark(pipe: Any, marker: str = marker) -> None:
                    pipe.set(marker, "1", exat=ended_at)
                await self._durably(marker, mark)
            markers = []
        keep = max(FEED_RETENTION, max(e.until - now for e in entries) + FEED_RETENTION_SLACK)
        keys: list[str] = [keyspace.FEED]
        args: list[str | int] = [keep * 1000]
        for entry in entries:
            denied = entry.kind in ("jti", "sid", "sub", "kid")  # `family` is for the feed only
            value = (str(entry.at) if entry.kind == "sub" else "1") if denied else ""
            args += [entry.kind, entry.value, entry.until, entry.at, value, max(entry.until, now + 1)]
            if denied:
                keys.append(keyspace.deny(entry.kind, entry.value))

        def queue(pipe: Any) -> None:
            for marker in markers:
                pipe.set(marker, "1", exat=ended_at)
            pipe.eval(scripts.REVOKE, len(keys), *keys, *args)  # the script text: a promoted node has no cache
        await self._durably(keyspace.FEED, queue)
        events.revoked((e.kind, e.value) for e in entries)  # metrics and the audit line

    async def _durably(self, key: str, queue: Callable[[Any], Any]) -> None:
        """Run the writes `queue` adds to a pipeline on the primary holding `key`, then WAITAOF 1 0:
        the primary's own AOF has them on disk, so they survive a power loss. All on ONE connection:
        Valkey counts the writes of the connection that WAITAOF is sent on, so on another pooled
        connection (or, on Cluster, another node) it would confirm nothing. The count is not
        enforced: with appendfsync everysec the next fsync may come just after the timeout, and the
        primary's own disk does not survive its loss anyway; surviving that is what
        TOKENSRV_DURABLE_REPLICAS is for (store/durable.py: its WAIT follows the writes on this
        connection by itself). Not WAITAOF for the replicas: a replica fsyncs its AOF once a second,
        so every revocation would wait up to a second or more, and a promoted replica serves what it
        holds in memory."""
        local_aof = await self._has_aof()
        async with self._primary_of(key) as primary, primary.pipeline(transaction=False) as pipe:
            queue(pipe)
            if local_aof:
                pipe.execute_command("WAITAOF", 1, 0, DURABLE_WRITE_TIMEOUT_MS)
            await pipe.execute()

    @asynccontextmanager
    async def _primary_of(self, key: str) -> AsyncIterator[Any]:
        """The one server's client, or on Cluster a client of the primary holding `key`'s slot,
        opened for this use only (revocations are rare; a failover moves slots)."""
        if not self.cluster:
            yield self.redis
            return
        await self.redis.initialize()  # a client that sent nothing yet knows no node; else a no-op
        primary = node_client(self._node_of(key))
        try:
            yield primary
        except (RedisError, OSError):
            with contextlib.suppress(RedisError, OSError):
                await self.redis.exists(key)  # routed: a moved slot makes the cluster client look again
            raise
        finally:
            await primary.aclose()

    async def _has_aof(self) -> bool:
        """Whether the store appends to an AOF: asked once (on Cluster, of the feed's primary)."""
        if self._aof is None:
            persistence = await self._on_node_of(keyspace.FEED, "INFO", "persistence")
            self._aof = str(persistence.get("aof_enabled", "0")) == "1"
            if not self._aof:
                log.warning("the store has no AOF: revocations do not survive a store restart")
        return self._aof

    def _node_of(self, key: str) -> Any:
        assert isinstance(self.redis, RedisCluster)
        return self.redis.get_node_from_key(key)

    async def _on_node_of(self, key: str, *command: str | int) -> Any:
        """A keyless command on the node that holds `key` (RedisCluster would send it to a random
        or default node, where it would report on the wrong server)."""
        if self.cluster:
            await self.redis.initialize()
            return await self.redis.execute_command(*command, target_nodes=self._node_of(key))
        return await self.redis.execute_command(*command)

    async def denied(self, jti: str, sid: str, sub: str) -> tuple[bool, bool, int]:
        """(jti revoked, sid revoked, subject not-before) in one round trip."""
        jti_hit, sid_hit, nbf = await self.redis.mget(  # one slot: the deny-list's hash tag
            keyspace.deny("jti", jti), keyspace.deny("sid", sid or "-"), keyspace.deny("sub", sub))
        return bool(jti_hit), bool(sid_hit and sid), int(nbf or 0)

    # ---- locks and rate limits ----
    @asynccontextmanager
    async def lock(self, name: str, ttl: int) -> AsyncIterator[bool]:
        """Yields True to the one holder; False to everyone else, who should skip the work."""
        key, token = keyspace.lock(name), secrets.token_hex(16)
        acquired = bool(await self.redis.set(key, token, nx=True, ex=ttl))
        try:
            yield acquired
        finally:
            if acquired:
                await self._release(keys=[key], args=[token])

    async def count_attempt(self, keys: Sequence[str], window: int) -> list[tuple[int, int]]:
        """Count one more attempt on each rate-limit key; (count, seconds left in its window) each.

        The window starts with a key's first attempt and is not extended by later ones. On one
        server the keys are counted in one MULTI, so of a burst of attempts exactly the first ones
        pass. On Cluster the keys are in different slots: one MULTI per key (a counter never exists
        without its window), so each key's count is still exact and no more attempts pass than the
        limit, but of a burst a few more than needed may be refused.
        """
        if self.cluster:
            each = await asyncio.gather(*(self._count_attempt([key], window) for key in keys))
            return [counted for (counted,) in each]
        return await self._count_attempt(keys, window)

    async def _count_attempt(self, keys: Sequence[str], window: int) -> list[tuple[int, int]]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(keyspace.failures(key))
                pipe.expire(keyspace.failures(key), window, nx=True)
                pipe.ttl(keyspace.failures(key))
            raw = await pipe.execute()
        return [(int(raw[i]), max(int(raw[i + 2]), 1)) for i in range(0, len(raw), 3)]

    async def forgive_attempt(self, keys: Sequence[str]) -> None:
        """Take back one counted attempt (it succeeded); a key that expired meanwhile stays gone."""
        for key in keys:
            await self._decrement(keys=[keyspace.failures(key)])

    async def take_token(self, key: str, rate: float, burst: int, now_ms: int) -> float:
        """Take one request from a token bucket: 0.0 if allowed, else seconds until one is."""
        wait_ms = await self._take_token(keys=[keyspace.bucket(key)], args=[rate, burst, now_ms])
        return int(wait_ms) / 1000

    async def clear_failures(self, keys: Sequence[str]) -> None:
        await self.redis.delete(*(keyspace.failures(key) for key in keys))  # RedisCluster splits it by slot

    # ---- browser sign-in: SSO sessions, pending logins, authorization codes ----
    # sso:<sha256 of the cookie>  JSON BrowserSession, until its idle or absolute end
    # authreq:<request id>         JSON PendingLogin, for the login page's few minutes
    # code:<sha256 of the code>    hash: r the AuthCode, s its state, t what it issued
    # Records also carry their own ends, checked against the server's (injected) clock.

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

    async def use_assertion_jti(self, client_id: str, jti: str, ttl: int) -> bool:
        """Spend a client assertion's jti (SET NX): False if that client used it before."""
        digest = hashlib.sha256(f"{client_id} {jti}".encode()).hexdigest()
        return bool(await self.redis.set(keyspace.assertion(digest), "1", nx=True, ex=max(1, ttl)))

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

    @functools.cached_property
    def _take_code(self) -> AsyncScript:
        return self.redis.register_script(scripts.TAKE_CODE)

    @functools.cached_property
    def _record_code(self) -> AsyncScript:
        return self.redis.register_script(scripts.RECORD_CODE)


def _session_ttl(session: BrowserSession, idle_ttl: int) -> int:
    """Seconds from its last use to its idle or absolute end (relative: Valkey's clock may differ)."""
    return max(1, min(idle_ttl, session.expires_at - session.last_seen))




def _rotation(family_id: str, reply: list[Any], now: int) -> RotateOutcome:
    outcome, extra = reply[0], reply[1]
    if outcome in ("unknown", "wrong_client", "wrong_key", "invalid_scope"):
        return outcome  # type: ignore[no-any-return]
    family = _family(family_id, dict(zip(reply[2][::2], reply[2][1::2])))
    if outcome == "reused":
        return Reused(family, _jti_list(extra, now))
    return Rotated(family, _jti_list(extra, now))


def _family(family_id: str, fields: dict[str, Any]) -> RefreshFamily:
    """A family from the fields the scripts answer with (lua/family.lua: `fields`)."""
    return RefreshFamily(
        family_id=family_id, client_id=fields["c"], sub=_unpack_sub(fields["s"]), scope=fields["sc"],
        created_ms=int(fields["ca"]), expires_at=int(fields["ea"]), sid=fields["si"],
        auth_time=int(fields["at"]), idle_expires_at=max(0, int(fields["ie"])), jkt=fields["k"],
    )


def _rotate_args(presented: str, new_digest: str, client_id: str, now: int, jti: str, jti_exp: int,
                 idle_ttl: int, grace: int) -> list[bytes | str | int]:
    return [_raw_digest(presented), _raw_digest(new_digest), client_id, now, jti, jti_exp, idle_ttl, grace]


def _raw_digest(digest: str) -> bytes:
    """A token's SHA-256 as callers hold it (base64url, 43 characters) -> the 32 bytes stored."""
    raw = base64.urlsafe_b64decode(digest + "=")
    if len(raw) != 32:
        raise ValueError("not a base64url SHA-256 digest")
    return raw


# A sub as `user add` makes it, 32 lowercase hex digits, is stored as its 16 bytes in base64url
# (22 characters); any other sub as "=" and itself (base64url has no "=").
_HEX_SUB = re.compile("[0-9a-f]{32}")


def _pack_sub(sub: str) -> str:
    if _HEX_SUB.fullmatch(sub):
        return base64.urlsafe_b64encode(bytes.fromhex(sub)).rstrip(b"=").decode()
    return "=" + sub


def _unpack_sub(packed: str) -> str:
    return packed[1:] if packed.startswith("=") else base64.urlsafe_b64decode(packed + "==").hex()
