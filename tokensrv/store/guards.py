"""What guards the endpoints, in Valkey: rate limits, locks between instances, and one-time
values (client assertion jtis, DPoP proofs and the DPoP nonce secret).

Keys (store/keyspace.py): rl:<kind>:<id> failure counters, tb:<kind>:<id> token buckets
(lua/take_token.lua), lock:<name>, assertion:<digest>, dpop:jti:<digest>, dpop:nonce-secret.
Writes here promise nothing a replica must have (store/durable.py: keyspace.UNPROMISED_PREFIXES),
except the one-time values.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection


class RateLimitStore:
    """`store.limits`: failure counters and token buckets."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self.cluster = conn.cluster
        self._decrement = conn.script(scripts.DECREMENT_IF_PRESENT)
        self._take_token = conn.script(scripts.TAKE_TOKEN)

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

    async def clear_failures(self, keys: Sequence[str]) -> None:
        await self.redis.delete(*(keyspace.failures(key) for key in keys))  # RedisCluster splits it by slot

    async def take_token(self, key: str, rate: float, burst: int, now_ms: int) -> float:
        """Take one request from a token bucket: 0.0 if allowed, else seconds until one is."""
        wait_ms = await self._take_token(keys=[keyspace.bucket(key)], args=[rate, burst, now_ms])
        return int(wait_ms) / 1000


class LockStore:
    """`store.locks`: mutual exclusion between instances (key rotation)."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._release = conn.script(scripts.RELEASE_LOCK)

    @asynccontextmanager
    async def lock(self, name: str, ttl: int) -> AsyncIterator[bool]:
        """Yields True to the one holder; False to everyone else, who should skip the work."""
        key, token = keyspace.lock(name), secrets.token_hex(16)
        try:
            acquired = bool(await self.redis.set(key, token, nx=True, ex=ttl))
        except asyncio.CancelledError:
            # cancelled after the SET was sent: the store may hold the lock for us without our
            # knowing, and every other instance would skip the work until the TTL ran out
            await self._release_shielded(key, token)
            raise
        try:
            yield acquired
        finally:
            if acquired:
                await self._release_shielded(key, token)

    async def _release_shielded(self, key: str, token: str) -> None:
        """Delete the lock if it is still ours (a compare-and-delete script), even while the
        caller is being cancelled: a shutdown cancels the key rotation that holds it."""
        await asyncio.shield(self._release(keys=[key], args=[token]))


class NonceStore:
    """`store.nonces`: values used once (a client assertion's jti, a DPoP proof), and the secret
    DPoP nonces are derived from (RFC 9449)."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis

    async def use_assertion_jti(self, client_id: str, jti: str, ttl: int) -> bool:
        """Spend a client assertion's jti (SET NX): False if that client used it before."""
        digest = hashlib.sha256(f"{client_id} {jti}".encode()).hexdigest()
        return bool(await self.redis.set(keyspace.assertion(digest), "1", nx=True, ex=max(1, ttl)))

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
