"""Dynamic client registration (RFC 7591/7592) in Valkey: RedisStore inherits these methods.

Keys (store/keyspace.py; one key per command or script, so Cluster-safe):
  iat:<sha256 of an initial access token>  -> how many registrations it may still make,
      until its expiry (`tokensrv client token --ttl`); gone once used up

An initial access token is a 256-bit secret: only its digest is a key, and nothing else of it is
kept. A registration access token is kept in its client's record (Client.registration_token_digest),
so it lives and dies with the client and a metadata update replaces both at once.
"""
from __future__ import annotations

import functools
import json

from redis.commands.core import AsyncScript

from tokensrv.store import Client, keyspace, scripts
from tokensrv.verify.store_url import StoreClient


class Registrations:
    """The RFC 7591/7592 part of RedisStore."""

    redis: StoreClient

    async def put_initial_token(self, digest: str, uses: int, ttl: int) -> None:
        await self.redis.set(keyspace.initial_token(digest), uses, ex=ttl)

    async def initial_token_uses(self, digest: str) -> int:
        """How many registrations the token with this digest may still make (0: none, or unknown)."""
        return int(await self.redis.get(keyspace.initial_token(digest)) or 0)

    async def use_initial_token(self, digest: str) -> bool:
        """Spend one use of the initial access token with this digest; False if it has none left
        (unknown, expired or used up)."""
        return bool(await self._use_initial_token(keys=[keyspace.initial_token(digest)]))

    @functools.cached_property
    def _use_initial_token(self) -> AsyncScript:
        return self.redis.register_script(scripts.USE_INITIAL_TOKEN)

    async def replace_client(self, client: Client, token_digest: str) -> bool:
        """Write a changed record of a registered client, if its registration access token is still
        the one with `token_digest` (one script: of two concurrent updates with one token, exactly
        one wins, and a client deleted meanwhile stays deleted). Announced, so caches drop the old
        record. False if it was not written."""
        key = keyspace.client(client.client_id)
        if not await self._replace_registered(keys=[key], args=[json.dumps(client.to_json()), token_digest]):
            return False
        await self.redis.publish(keyspace.CLIENT_CHANGES, client.client_id)
        return True

    @functools.cached_property
    def _replace_registered(self) -> AsyncScript:
        return self.redis.register_script(scripts.REPLACE_REGISTERED)
