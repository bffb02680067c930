"""What `tokensrv apply` manages: the clients and users it created or adopted (named in its file),
so that `apply --prune` removes only those, never a client registered over RFC 7591 or an object
an operator made by hand.

Keys (store/keyspace.py):
  managed:clients   hash: client_id -> the client's created_at when apply took it on
  managed:users     hash: sub -> username
The value ties an entry to the very object apply took on: a client removed by hand and added again
under the same id (a new created_at) is not apply's. Each write touches one key (Cluster-safe).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tokensrv.store import keyspace
from tokensrv.store.connection import Connection

Kind = Literal["clients", "users"]


class ManagedStore:
    """`store.managed`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis

    async def managed(self, kind: Kind) -> dict[str, str]:
        found = await self.redis.hgetall(keyspace.managed(kind))
        return {_text(k): _text(v) for k, v in found.items()}

    async def adopt(self, kind: Kind, entries: Mapping[str, str]) -> None:
        if entries:
            mapping: dict[Any, Any] = dict(entries)
            await self.redis.hset(keyspace.managed(kind), mapping=mapping)

    async def release(self, kind: Kind, names: list[str]) -> None:
        if names:
            await self.redis.hdel(keyspace.managed(kind), *names)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
