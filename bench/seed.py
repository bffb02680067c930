"""In-process work against the store: refresh tokens for the refresh load, and Valkey's memory
per refresh family and per deny-list entry."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from tokensrv.app import open_redis
from tokensrv.config import load_settings
from tokensrv.oauth import Provider
from tokensrv.oauth.tokens import (
    Subject,
    issue_for_user,
    new_jti,
    new_refresh_token,
    new_session_id,
)
from tokensrv.passwords import PasswordPool
from tokensrv.rotation import KeyManager
from tokensrv.store import RefreshFamily, Revocation
from tokensrv.store.redis import PREFIX, RedisStore

CONCURRENCY = 50  # below redis-py's connection-pool limit


async def _in_batches(jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    batch: list[Awaitable[None]] = []
    for job in jobs:
        batch.append(job())
        if len(batch) >= CONCURRENCY:
            await asyncio.gather(*batch)
            batch = []
    await asyncio.gather(*batch)


async def refresh_tokens(redis_url: str, keys_dir: Path, client_id: str, username: str, count: int) -> list[str]:
    """`count` refresh families of one user, minted as the password grant mints them (minus the
    argon2 check, which the login load measures on its own)."""
    settings = load_settings({}, redis_url=redis_url, keys_dir=str(keys_dir))
    redis = open_redis(redis_url)
    passwords = PasswordPool(1)
    try:
        store = RedisStore(redis)
        keys = KeyManager(settings, store, lambda: int(time.time()))
        await keys.reload(force=True)
        p = Provider(settings, store, keys, passwords, time.time)
        client, user = await store.get_client(client_id), await store.find_user(username)
        assert client is not None and user is not None
        tokens: list[str] = []

        async def mint() -> None:
            subject = Subject.of_user(user, p.now(), new_session_id())
            tokens.append((await issue_for_user(p, client, subject, "read"))["refresh_token"])

        await _in_batches(mint for _ in range(count))
        return tokens
    finally:
        passwords.close()
        await redis.aclose()


@dataclass(frozen=True)
class Memory:
    per_family: float  # bytes of used_memory per live refresh family, its index entries included
    family_hash: float  # MEMORY USAGE of one family's hash alone (a sample's mean)
    per_deny_entry: float  # bytes per deny-list entry, its revocation-feed entry included


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def memory(redis_url: str, count: int) -> Memory:
    """Create `count` families (each its own user and session, as after `count` SSO logins) and
    `count` deny-list entries through RedisStore; measure INFO used_memory before and after.

    The Valkey measured has no AOF (its buffer would blur the deltas): the store's warning about
    that is not for this process."""
    logging.getLogger("tokensrv.store").setLevel(logging.ERROR)
    redis = open_redis(redis_url)
    try:
        store = RedisStore(redis)
        await redis.flushdb()
        now = int(time.time())
        family_ids: list[str] = []

        async def family() -> None:
            _, family_id, digest = new_refresh_token()
            family_ids.append(family_id)
            record = RefreshFamily(
                family_id=family_id, client_id="orders-web", sub=secrets.token_hex(16),
                scope="openid profile read", created_ms=now * 1000, expires_at=now + 30 * 86400,
                sid=new_session_id(), auth_time=now)
            await store.create_family(record, digest, new_jti(), now + 900, 7 * 86400)

        before = await used_memory(redis)
        await _in_batches(family for _ in range(count))
        per_family = (await used_memory(redis) - before) / count
        sample = family_ids[:: max(1, count // 200)]
        sizes = [await redis.memory_usage(PREFIX + "rf:" + f, samples=0) or 0 for f in sample]

        jtis = [new_jti() for _ in range(count)]

        def deny(start: int) -> Callable[[], Awaitable[None]]:
            batch = [Revocation("jti", jti, now + 900, now) for jti in jtis[start:start + 500]]
            return lambda: store.revoke(batch, now)

        before = await used_memory(redis)
        await _in_batches(deny(i) for i in range(0, count, 500))
        per_deny = (await used_memory(redis) - before) / count
        return Memory(per_family, sum(sizes) / len(sizes), per_deny)
    finally:
        await redis.flushdb()
        await redis.aclose()


async def valkey_cpu(redis_url: str) -> float:
    """Seconds of CPU Valkey has used so far (user + system)."""
    redis = open_redis(redis_url)
    try:
        info = await redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        await redis.aclose()
