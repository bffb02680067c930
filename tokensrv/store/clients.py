"""Client records, and dynamic client registration (RFC 7591/7592), in Valkey.

Keys (store/keyspace.py):
  client:<client_id>  JSON Client          clients  set of ids
  iat:<sha256 of an initial access token>  -> how many registrations it may still make,
      until its expiry (`tokensrv client token --ttl`); gone once used up

A change of a client is announced on keyspace.CLIENT_CHANGES: a process's cache (store/cache.py)
may hold the record, or its absence.

An initial access token is a 256-bit secret: only its digest is a key, and nothing else of it is
kept. A registration access token is kept in its client's record (Client.registration_token_digest),
so it lives and dies with the client and a metadata update replaces both at once.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection
from tokensrv.store.records import Client, Conflict


class ClientStore:
    """`store.clients`: the records, and the RFC 7591/7592 tokens that register and update them."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._conn = conn
        self._use_initial_token = conn.script(scripts.USE_INITIAL_TOKEN)

    async def add_client(self, client: Client) -> None:
        key = keyspace.client(client.client_id)
        if not await self.redis.set(key, json.dumps(client.to_json()), nx=True):
            raise Conflict(f"client {client.client_id!r} already exists")
        await self.redis.sadd(keyspace.CLIENTS, client.client_id)
        await self.redis.publish(keyspace.CLIENT_CHANGES, client.client_id)  # a cache may hold its absence

    async def get_client(self, client_id: str) -> Client | None:
        raw = await self.redis.get(keyspace.client(client_id))
        return Client.from_json(json.loads(raw)) if raw else None

    async def list_clients(self) -> list[Client]:
        ids = sorted(str(i) for i in await self.redis.smembers(keyspace.CLIENTS))
        found = [await self.get_client(i) for i in ids]
        return [c for c in found if c is not None]

    async def remove_client(self, client_id: str) -> bool:
        # Two slots on Cluster, so no MULTI: the record goes first (it stops authenticating at
        # once), its id last, so the id set only ever holds too many ids (list_clients skips them).
        deleted = await self.redis.delete(keyspace.client(client_id))
        await self.redis.srem(keyspace.CLIENTS, client_id)
        await self.redis.publish(keyspace.CLIENT_CHANGES, client_id)
        return bool(deleted)

    async def update_client(self, client_id: str, change: Callable[[Client], Client]) -> Client | None:
        """`change` applied to the record as it is now (None if there is none), written only if
        nothing wrote the record meanwhile (else applied again to the new one): of two concurrent
        updates neither is lost. Announced, so every cache drops the old record."""
        changed = await self._conn.update_json(keyspace.client(client_id), Client.from_json, change)
        if changed is None:
            return None
        await self.redis.publish(keyspace.CLIENT_CHANGES, client_id)
        return changed

    # ---- initial access tokens (RFC 7591 §3) ----

    async def put_initial_token(self, digest: str, uses: int, ttl: int) -> None:
        await self.redis.set(keyspace.initial_token(digest), uses, ex=ttl)

    async def initial_token_uses(self, digest: str) -> int:
        """How many registrations the token with this digest may still make (0: none, or unknown)."""
        return int(await self.redis.get(keyspace.initial_token(digest)) or 0)

    async def use_initial_token(self, digest: str) -> bool:
        """Spend one use of the initial access token with this digest; False if it has none left
        (unknown, expired or used up)."""
        return bool(await self._use_initial_token(keys=[keyspace.initial_token(digest)]))
