"""The deny-list and the revocation feed verifiers follow, in Valkey.

Keys (store/keyspace.py): the feed (keyspace.FEED, a Stream), deny:{<feed>}:<kind>:<value> (until
the entry stops mattering), and ended:<sid> (an SSO session ended, for the refresh family lifetime).

Valkey Cluster: the deny-list keys carry the feed's name as their hash tag, so a revocation (its
deny-list keys and its feed entries: one script) and the deny-list check (one MGET) are in the
feed's slot: one primary takes every revocation, and a verifier's load scans that primary only.
A revocation is acknowledged only once the store's AOF has it on disk (WAITAOF: see
Connection.durably); every write, once TOKENSRV_DURABLE_REPLICAS replicas have it (store/durable.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokensrv.observability import events
from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection
from tokensrv.store.records import Revocation

FEED_RETENTION = 86400  # seconds the feed keeps entries at least: a verifier away longer resyncs
FEED_RETENTION_SLACK = 60  # seconds a feed entry outlives the longest-lived thing it denies


class DenyListStore:
    """`store.denylist`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.redis = conn.redis

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
        if self.conn.cluster:  # the markers are in their sessions' slots, each maybe on another primary
            for marker in markers:
                def mark(pipe: Any, marker: str = marker) -> None:
                    pipe.set(marker, "1", exat=ended_at)
                await self.conn.durably(marker, mark)
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
        await self.conn.durably(keyspace.FEED, queue)
        events.revoked((e.kind, e.value) for e in entries)  # metrics and the audit line

    async def denied(self, jti: str, sid: str, sub: str) -> tuple[bool, bool, int]:
        """(jti revoked, sid revoked, subject not-before) in one round trip."""
        jti_hit, sid_hit, nbf = await self.redis.mget(  # one slot: the deny-list's hash tag
            keyspace.deny("jti", jti), keyspace.deny("sid", sid or "-"), keyspace.deny("sub", sub))
        return bool(jti_hit), bool(sid_hit and sid), int(nbf or 0)
