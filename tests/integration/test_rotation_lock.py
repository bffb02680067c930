"""Shutdown cancels the rotation schedule; a step cancelled mid-way must release the Redis lock, or
every other instance would skip rotation until the lock's TTL ran out."""
from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.helpers.poll import eventually
from tokensrv.keys.manager import KeyManager
from tokensrv.server.app import open_redis
from tokensrv.store import keyspace
from tokensrv.store.redis import RedisStore

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

LOCK = keyspace.lock("keys")


async def test_a_cancelled_step_releases_the_rotation_lock(settings, redis):
    client = open_redis(settings.redis_url)
    try:
        keys = KeyManager(settings, RedisStore(client).locks, lambda: int(time.time()))
        task = asyncio.create_task(keys.tick())  # a fresh keys/: create and promote, under the lock
        async def locked() -> bool:
            assert not task.done(), "the step ended without taking the lock"
            return bool(await redis.exists(LOCK))

        await eventually(locked, "the step to take the lock", interval=0.001)  # held briefly: polled often
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert not await redis.exists(LOCK)
        async with RedisStore(client).locks.lock("keys", 60) as mine:
            assert mine  # the next instance gets it at once
    finally:
        await client.aclose()
