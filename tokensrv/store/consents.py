"""Consents in Valkey: which clients a user allowed, for which scopes, and when (the consent
page, oauth/browser/consent.py).

Keys (store/keyspace.py):
  consents:<sub>   hash: client_id -> JSON {"scopes": [...], "granted": epoch s}; no TTL
Every write touches the one key (Cluster-safe). A grant adds to what was allowed before (the
union of the scopes, in one Lua-free read-modify-write: two grants at once for the same client
keep at least the later one's scopes, which is what the later page asked for).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from tokensrv.store import keyspace
from tokensrv.store.connection import Connection


@dataclass(frozen=True)
class Consent:
    """What a user allowed a client: the scopes, and when they were last added to."""
    client_id: str
    scopes: tuple[str, ...]
    granted: int


class ConsentStore:
    """`store.consents`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis

    async def list_consents(self, sub: str) -> list[Consent]:
        found = await self.redis.hgetall(keyspace.consents(sub))
        return sorted((_consent(_text(k), _text(v)) for k, v in found.items()), key=lambda c: c.client_id)

    async def get_consent(self, sub: str, client_id: str) -> Consent | None:
        raw = await self.redis.hget(keyspace.consents(sub), client_id)
        return _consent(client_id, _text(raw)) if raw else None

    async def grant_consent(self, sub: str, client_id: str, scopes: Iterable[str], now: int) -> Consent:
        """Remember these scopes besides any allowed before; the union is returned."""
        before = await self.get_consent(sub, client_id)
        union = tuple(sorted(set(before.scopes if before else ()) | set(scopes)))
        await self.redis.hset(keyspace.consents(sub), client_id,
                              json.dumps({"scopes": list(union), "granted": now}))
        return Consent(client_id, union, now)

    async def revoke_consent(self, sub: str, client_id: str) -> bool:
        return int(await self.redis.hdel(keyspace.consents(sub), client_id)) > 0

    async def remove_all_consents(self, sub: str) -> None:
        await self.redis.delete(keyspace.consents(sub))


def _consent(client_id: str, value: str) -> Consent:
    record = json.loads(value)
    return Consent(client_id, tuple(record["scopes"]), int(record["granted"]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
