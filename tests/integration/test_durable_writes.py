"""TOKENSRV_DURABLE_REPLICAS (store/durable.py): every write the store makes is followed by one
WAIT on its own connection, reads and unpromised counters by none, and the replies stay in step
whatever redis-py sends in between (its health-check PINGs). Counted by the primary itself
(INFO commandstats) on the session's Sentinel topology (a primary and a replica)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from examples.topologies import SentinelTopology
from tokensrv.store import keyspace
from tokensrv.store.durable import require_replicas

pytestmark = pytest.mark.integration


@pytest.fixture
async def durable(sentinel_topology: SentinelTopology) -> AsyncIterator[Redis]:
    primary = sentinel_topology.primary()
    client = Redis(host="127.0.0.1", port=primary.port, decode_responses=True, health_check_interval=3600)
    require_replicas(client, 1)
    yield client
    await client.delete("durable:k", "durable:h", keyspace.failures("durable"))
    await client.aclose()


def health_check_next(client: Redis) -> None:
    """The next command on each idle connection is preceded by redis-py's health check (a PING sent
    before it, packed after it): what happens to a connection idle longer than the interval."""
    for connection in client.connection_pool._available_connections:
        connection.next_health_check = -1


async def waits(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def test_each_write_waits_once_and_nothing_else_does(durable: Redis) -> None:
    before = await waits(durable)
    assert await durable.set("durable:k", "v") is True
    assert await durable.get("durable:k") == "v"  # a read: no WAIT, and the reply is its own
    assert await waits(durable) == before + 1
    async with durable.pipeline(transaction=False) as pipe:  # one WAIT after the last write
        pipe.hset("durable:h", "a", "1").hset("durable:h", "b", "2").hgetall("durable:h")
        assert await pipe.execute() == [1, 1, {"a": "1", "b": "2"}]
    assert await waits(durable) == before + 2
    async with durable.pipeline(transaction=True) as pipe:  # MULTI/EXEC: one WAIT after EXEC
        pipe.incr(keyspace.failures("durable")).hset("durable:h", "c", "3")
        assert await pipe.execute() == [1, 1]
    assert await waits(durable) == before + 3
    assert await durable.incr(keyspace.failures("durable")) == 2  # a failure counter promises nothing
    assert await durable.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "durable:k", "w") == "OK"
    assert await waits(durable) == before + 4
    for i in range(20):  # replies in step across health checks, writes and reads
        health_check_next(durable)
        assert await durable.set("durable:k", f"x{i}") is True
        health_check_next(durable)
        assert await durable.get("durable:k") == f"x{i}"
    assert await waits(durable) == before + 24
