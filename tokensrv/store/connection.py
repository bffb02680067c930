"""What every domain of the store shares: the Valkey client (one server, Sentinel's primary or a
Cluster), whether it is a Cluster, and the durable-write helper the revocations use.

Valkey Cluster: every Lua script and MULTI/EXEC touches one hash slot. Most touch one key; each
domain module says how its multi-key writes are ordered where they span slots.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, WatchError

from tokensrv.store import keyspace
from tokensrv.store.durable import DURABLE_WRITE_TIMEOUT_MS, require_replicas
from tokensrv.verify.store_url import StoreClient, node_client

log = logging.getLogger("tokensrv.store")


class Record(Protocol):
    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Record)


class Connection:
    """The store's client, shared by its domains (store/redis.py composes them over one)."""

    def __init__(self, redis: StoreClient, durable_replicas: int = 0) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self.durable_replicas = durable_replicas  # TOKENSRV_DURABLE_REPLICAS
        if durable_replicas:  # every write then waits for them, on the connection that made it
            require_replicas(redis, durable_replicas)
        self._aof: bool | None = None  # does the store append to an AOF? asked once

    async def update_json(self, key: str, load: Callable[[dict[str, Any]], R], change: Callable[[R], R]) -> R | None:
        """`change` applied to the JSON record at `key` as it is now (None if there is none),
        written only if nothing wrote the record meanwhile, else applied again to the new one
        (WATCH): of concurrent updates (a login, an operator, a password change) none is lost."""
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if not raw:
                        return None
                    changed = change(load(json.loads(raw)))
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    pipe.set(key, json.dumps(changed.to_json()))
                    await pipe.execute()
                    return changed
                except WatchError:
                    continue  # changed meanwhile: apply the change to the new record

    def script(self, source: str) -> AsyncScript:
        """A Lua script of store/scripts.py, sent by its SHA (and loaded when Valkey lacks it)."""
        return self.redis.register_script(source)

    async def durably(self, key: str, queue: Callable[[Any], Any]) -> None:
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
