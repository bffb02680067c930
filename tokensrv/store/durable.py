"""TOKENSRV_DURABLE_REPLICAS: no write is acknowledged before N replicas have it.

Replication is asynchronous: a primary answers a write before any replica has it, and a failover
promotes a replica with what it holds. So a rotation answered 200 just before the primary died
could come back on the new primary as the family's previous state: the spent token live again, the
client's new one taken for reuse. With N > 0 every write the store makes (a rotation, a code, a
device code or PAR request spent, a session started or ended, a client or user changed, a
revocation) is followed by `WAIT N timeout` on the SAME connection (Valkey counts that connection's
writes), sent with it in one packet; fewer than N confirmations in DURABLE_WRITE_TIMEOUT_MS fail
the request (NotDurable, a store timeout: 503). The write may then have happened on the primary
alone: the client retries, which every such write tolerates (a refresh retry is answered while its
successor is unused, a repeated revocation is harmless, a spent code stays spent).

Done here, in the connection class, so that every store method, script and pipeline, on one
server, Sentinel's primary or each Cluster node, is covered without a WAIT of its own; with N = 0
the store's client keeps redis-py's own connections and pays nothing. Not waited for: reads, and
what no answer promises (rate-limit counters and token buckets, locks), so that a burst of
failures or rate-limited requests costs no replica round trip.

Not `min-replicas-to-write`/`min-replicas-max-lag` on the primary: those refuse writes while no
replica has acknowledged within the lag (seconds), so they bound how much can be lost, but a write
accepted a moment before the primary dies may still be on no replica: the lost rotation again.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tokensrv.store import keyspace
from tokensrv.verify.store_url import StoreClient

DURABLE_WRITE_TIMEOUT_MS = 1000  # how long a write waits for its replicas before it fails (503)

# Commands that change nothing a replica must have, or that must not be followed by WAIT
# (connection set-up, pub/sub, the waits themselves). Every other command is a write.
_NO_WAIT = frozenset({
    "GET", "MGET", "HGET", "HMGET", "HGETALL", "EXISTS", "SMEMBERS", "SISMEMBER", "SCARD", "LRANGE", "LLEN",
    "TTL", "PTTL", "EXPIRETIME", "TYPE", "OBJECT", "MEMORY", "SCAN", "KEYS", "DBSIZE", "XRANGE", "XREVRANGE",
    "XLEN", "XINFO", "XPENDING", "XREAD", "EVALSHA_RO", "EVAL_RO", "PING", "ECHO", "INFO", "TIME", "ROLE",
    "CLIENT", "HELLO", "AUTH", "SELECT", "READONLY", "READWRITE", "CLUSTER", "COMMAND", "CONFIG", "SCRIPT",
    "WAIT", "WAITAOF", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE",
    "SUNSUBSCRIBE", "MULTI", "DISCARD", "WATCH", "UNWATCH", "QUIT", "RESET", "SENTINEL",
})
# Keys whose writes no answer promises: failure counters, token buckets, locks
_UNPROMISED = keyspace.UNPROMISED_PREFIXES


class NotDurable(RedisTimeoutError):
    """The replicas did not confirm a write in time (WAIT): fail closed (a 503), the
    write may or may not survive a failover. A timeout, so the app treats it as an unreachable store."""


def needs_wait(args: tuple[Any, ...]) -> bool:
    """Whether the command `args` writes something an answer may promise."""
    name = _text(args[0]).upper().split(" ", 1)[0]
    if name in _NO_WAIT:
        return False
    if name in ("EVAL", "EVALSHA", "FCALL"):  # script, number of keys, keys...
        key = args[3] if len(args) > 3 and int(args[2]) > 0 else None
    else:
        key = args[1] if len(args) > 1 else None
    return key is None or not _text(key).startswith(_UNPROMISED)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes | bytearray) else str(value)


class _Packed(list[bytes]):
    """Packed commands, and for each of their replies whether a WAIT's reply follows it."""

    def __init__(self, chunks: list[bytes], waits: list[bool]) -> None:
        super().__init__(chunks)
        self.waits = waits


class _WaitsForReplicas(AbstractConnection):
    """A connection that sends `WAIT replicas timeout` after each write (after the last write of a
    pipeline, after EXEC for a transaction that writes), and reads its answer with the write's."""

    replicas = 0  # set on the subclass that require_replicas() makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._followed_by_wait: deque[bool] = deque()  # one per reply expected, in the order sent

    def pack_command(self, *args: Any) -> list[bytes]:
        packed = super().pack_command(*args)
        if needs_wait(args):
            return _Packed([*packed, *super().pack_command("WAIT", self.replicas, DURABLE_WRITE_TIMEOUT_MS)], [True])
        return _Packed(packed, [False])

    def pack_commands(self, commands: Any) -> list[bytes]:
        commands = [tuple(c) for c in commands]
        marks, in_multi, multi_writes = [False] * len(commands), False, False
        for i, args in enumerate(commands):
            name = _text(args[0]).upper()
            if name == "MULTI":
                in_multi, multi_writes = True, False
            elif name == "EXEC":
                marks[i], in_multi = multi_writes, False
            elif needs_wait(args):
                multi_writes = multi_writes or in_multi
                marks[i] = not in_multi
        last = max((i for i, m in enumerate(marks) if m), default=-1)  # one WAIT covers what came before
        output: list[bytes] = []
        for i, args in enumerate(commands):
            output += super().pack_command(*args)
            if i == last:
                output += super().pack_command("WAIT", self.replicas, DURABLE_WRITE_TIMEOUT_MS)
        return _Packed([b"".join(output)], [i == last for i in range(len(commands))])

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Replies are expected in the order commands are SENT: a health check's PING, packed after
        the command it precedes, is sent (and its flag recorded, by this same method) first."""
        await super().send_packed_command(command, check_health)
        self._followed_by_wait.extend(getattr(command, "waits", ()))

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        followed = self._followed_by_wait.popleft() if self._followed_by_wait else False
        try:
            response = await super().read_response(*args, **kwargs)
        except ResponseError:
            if followed:
                await self._confirmations()  # keep the connection in step, then report the error
            raise
        if followed:
            confirmed = await self._confirmations()
            if confirmed < self.replicas:
                await self.disconnect(nowait=True)  # whatever else was sent with it is unread
                raise NotDurable(f"WAIT: {confirmed} of {self.replicas} replicas confirmed "
                                 f"within {DURABLE_WRITE_TIMEOUT_MS} ms")
        return response

    async def _confirmations(self) -> int:
        return int(await super().read_response())

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        self._followed_by_wait.clear()  # a new connection owes no replies
        await super().disconnect(*args, **kwargs)


def require_replicas(redis: StoreClient, replicas: int) -> None:
    """Make every connection `redis` opens from now on wait for `replicas` replicas after each
    write (its pool's connection class, or on Cluster each node's, subclassed)."""
    if isinstance(redis, Redis):
        pool = redis.connection_pool
        pool.connection_class = _waiting(pool.connection_class, replicas)
        return
    assert isinstance(redis, RedisCluster)
    # the kwargs every ClusterNode is made from (NodesManager shares the dict), and the nodes made
    # already (the seeds, and any the client has learnt)
    redis.connection_kwargs["connection_class"] = _waiting(redis.connection_kwargs["connection_class"], replicas)
    for node in [*redis.startup_nodes, *redis.nodes_manager.nodes_cache.values()]:
        node.connection_class = _waiting(node.connection_class, replicas)


def _waiting(base: type[Any], replicas: int) -> type[Any]:
    if issubclass(base, _WaitsForReplicas):
        return base
    return type(f"Durable{base.__name__}", (_WaitsForReplicas, base), {"replicas": replicas})
