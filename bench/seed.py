"""In-process work against the store (one server or a Cluster: any store URL): refresh tokens for the
refresh load, Valkey's memory per refresh family and per deny-list entry, and Valkey's CPU time."""
from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey
from redis.asyncio import Redis, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from tokensrv.config import load_settings
from tokensrv.keys.manager import KeyManager
from tokensrv.oauth import Provider
from tokensrv.oauth.own_tokens import Subject, issue_for_user, new_jti, new_refresh_token, new_session_id
from tokensrv.passwords import PasswordPool
from tokensrv.server.app import open_redis
from tokensrv.store import RefreshFamily, Revocation
from tokensrv.store.keyspace import PREFIX, family
from tokensrv.store.redis import RedisStore

CONCURRENCY = 50  # below redis-py's connection-pool limit


async def _in_batches(jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    batch: list[Awaitable[None]] = []
    for job in jobs:
        batch.append(job())
        if len(batch) >= CONCURRENCY:
            await asyncio.gather(*batch)
            batch = []
    await asyncio.gather(*batch)


def dpop_proofs(htu: str, count: int) -> list[str]:
    """`count` DPoP proofs for POST `htu`, as one client makes them: one ES256 key, a new jti each,
    iat now (the bench server's TOKENSRV_DPOP_IAT_WINDOW keeps them acceptable for the run)."""
    key = ECKey.generate_key("P-256")
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    now = int(time.time())
    return [jws.serialize_compact(header, json.dumps({"jti": secrets.token_urlsafe(12), "htm": "POST",
                                                      "htu": htu, "iat": now}), key)
            for _ in range(count)]


async def refresh_tokens(redis_url: str, keys_dir: Path, client_id: str, username: str, count: int) -> list[str]:
    """`count` refresh families of one user, minted as the password grant mints them (minus the
    argon2 check, which the login load measures on its own)."""
    settings = load_settings({}, redis_url=redis_url, keys_dir=str(keys_dir))
    redis = open_redis(redis_url)
    passwords = PasswordPool(1)
    try:
        store = RedisStore(redis)
        keys = KeyManager(settings, store.locks, lambda: int(time.time()))
        await keys.reload(force=True)
        p = Provider(settings, store, keys, passwords, time.time)
        client, user = await store.clients.get_client(client_id), await store.users.find_user(username)
        assert client is not None and user is not None
        tokens: list[str] = []

        async def mint() -> None:
            subject = Subject.of_user(user, p.now(), new_session_id())
            tokens.append((await issue_for_user(p, client, subject, "read")).response["refresh_token"])

        await _in_batches(mint for _ in range(count))
        return tokens
    finally:
        passwords.close()
        await redis.aclose()


@dataclass(frozen=True)
class Memory:
    per_family: float  # bytes of used_memory per live refresh family, all it costs Valkey
    family_key: float  # MEMORY USAGE of one family's key alone (a sample's mean)
    per_deny_entry: float  # bytes per deny-list entry, its revocation-feed entry included


# Memory INFO memory counts in used_memory that is not data: buffers that fill and drain with the
# traffic (to replicas, to clients, to the AOF), left out so that a delta is what the keys cost.
TRANSIENT = ("mem_total_replication_buffers", "mem_clients_normal", "mem_aof_buffer")


async def used_memory(redis: Redis | RedisCluster) -> int:
    """INFO used_memory less the transient buffers; on a Cluster, summed over the primaries."""
    if isinstance(redis, RedisCluster):
        per_node = await redis.info("memory", target_nodes=RedisCluster.PRIMARIES)
        infos = list(per_node.values())
    else:
        infos = [await redis.info("memory")]
    return sum(int(info["used_memory"]) - sum(int(info.get(name, 0)) for name in TRANSIENT) for info in infos)


async def _measure_memory(redis_url: str, sample: Sequence[str] = ()) -> tuple[int, float]:
    """used_memory now, and the mean MEMORY USAGE of the sampled families' keys."""
    redis = open_redis(redis_url)
    try:
        sizes = [await redis.memory_usage(family(f), samples=0) or 0 for f in sample]
        return await used_memory(redis), sum(sizes) / max(1, len(sizes))
    finally:
        await redis.aclose()


def family_memory(redis_url: str, count: int, cores: Sequence[int]) -> tuple[float, float]:
    """Create `count` families (each its own user and session, as after `count` SSO logins) through
    RedisStore, from one process per core: bytes of used_memory per family, and the mean MEMORY
    USAGE of a family's key alone."""
    start, _ = asyncio.run(_measure_memory(redis_url))
    samples = _on_cores(cores, _create_families, redis_url, count)
    families, family_key = asyncio.run(_measure_memory(redis_url, [f for sample in samples for f in sample]))
    return (families - start) / (count // len(cores) * len(cores)), family_key


def fill_slots(redis_url: str) -> float:
    """On a Cluster: one small key with an expiry in every hash slot, so that each slot's key and
    expiry tables exist before family_memory measures (as they do once millions of families are
    spread over the slots). Returns the bytes that cost, summed over the primaries; on one server
    it does nothing."""
    async def fill() -> float:
        redis = open_redis(redis_url)
        try:
            if not isinstance(redis, RedisCluster):
                return 0.0
            start = await used_memory(redis)
            async with redis.pipeline(transaction=False) as pipe:
                for tag in _slot_tags():
                    pipe.set(f"{PREFIX}bench:slot:{{{tag}}}", "1", ex=30 * 86400)
                await pipe.execute()
            return float(await used_memory(redis) - start)
        finally:
            await redis.aclose()

    return asyncio.run(fill())


def _slot_tags() -> list[str]:
    """One hash tag for each slot."""
    tags: dict[int, str] = {}
    n = 0
    while len(tags) < REDIS_CLUSTER_HASH_SLOTS:
        tags.setdefault(key_slot(str(n).encode()), str(n))
        n += 1
    return list(tags.values())


def memory(redis_url: str, count: int, cores: Sequence[int]) -> Memory:
    """`count` families (family_memory), then `count` deny-list entries, on the same Valkey."""
    per_family, family_key = family_memory(redis_url, count, cores)
    families, _ = asyncio.run(_measure_memory(redis_url))
    _on_cores(cores, _create_denials, redis_url, count)
    denials, _ = asyncio.run(_measure_memory(redis_url))
    return Memory(per_family, family_key, (denials - families) / count)


def _on_cores(cores: Sequence[int], job: Callable[[str, int], Coroutine[Any, Any, list[str]]], redis_url: str,
              count: int) -> list[list[str]]:
    """`job(redis_url, share)` in one forked process per core, sharing `count` between them."""
    share = count // len(cores)
    context = multiprocessing.get_context("fork")
    with context.Pool(len(cores)) as pool:
        return pool.starmap(_run_pinned, [(core, job, redis_url, share) for core in cores])


def _run_pinned(core: int, job: Callable[[str, int], Coroutine[Any, Any, list[str]]], redis_url: str,
                share: int) -> list[str]:
    os.sched_setaffinity(0, {core})
    # the memory section's Valkey has no AOF (its buffer would blur the deltas): its warning is not for us
    logging.getLogger("tokensrv.store").setLevel(logging.ERROR)
    return asyncio.run(job(redis_url, share))


async def _create_families(redis_url: str, count: int) -> list[str]:
    """`count` families; a sample of their ids, for MEMORY USAGE."""
    redis = open_redis(redis_url)
    store, now, family_ids = RedisStore(redis), int(time.time()), []

    async def family() -> None:
        _, family_id, digest = new_refresh_token()
        family_ids.append(family_id)
        record = RefreshFamily(
            family_id=family_id, client_id="orders-web", sub=secrets.token_hex(16),
            scope="openid profile read", created_ms=now * 1000, expires_at=now + 30 * 86400,
            sid=new_session_id(), auth_time=now)
        await store.refresh.create_family(record, digest, new_jti(), now + 900, 7 * 86400)

    try:
        await _in_batches(family for _ in range(count))
    finally:
        await redis.aclose()
    return family_ids[:: max(1, count // 100)]


async def _create_denials(redis_url: str, count: int) -> list[str]:
    """`count` jti deny-list entries (each also a revocation-feed entry), 500 per revocation."""
    redis = open_redis(redis_url)
    store, now = RedisStore(redis), int(time.time())
    jtis = [new_jti() for _ in range(count)]

    def deny(start: int) -> Callable[[], Awaitable[None]]:
        batch = [Revocation("jti", jti, now + 900, now) for jti in jtis[start:start + 500]]
        return lambda: store.denylist.revoke(batch, now)

    try:
        await _in_batches(deny(i) for i in range(0, count, 500))
    finally:
        await redis.aclose()
    return []


async def valkey_cpu(redis_urls: Sequence[str]) -> list[float]:
    """Seconds of CPU each Valkey server has used so far (INFO cpu, user + system, all its threads).
    One URL per server: a Cluster node's own redis:// URL, not the cluster's."""
    async def one(url: str) -> float:
        redis = open_redis(url)
        try:
            info = await redis.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        finally:
            await redis.aclose()

    return list(await asyncio.gather(*(one(url) for url in redis_urls)))
