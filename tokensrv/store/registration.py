"""Dynamic client registration (RFC 7591/7592) in Valkey: RedisStore inherits these methods.

Keys (one key per command or script, so Cluster-safe):
  tokensrv:iat:<sha256 of an initial access token>  -> how many registrations it may still make,
      until its expiry (`tokensrv client token --ttl`); gone once used up

An initial access token is a 256-bit secret: only its digest is a key, and nothing else of it is
kept. A registration access token is kept in its client's record (Client.registration_token_digest),
so it lives and dies with the client and a metadata update replaces both at once.
"""
from __future__ import annotations

import functools
import json

from redis.commands.core import AsyncScript

from ..verify.store_url import StoreClient
from . import Client, Missing

PREFIX = "tokensrv:"
INITIAL_TOKEN_PREFIX = PREFIX + "iat:"

# One use of an initial access token: of two concurrent registrations with its last use, exactly
# one gets it. DECR keeps the key's expiry.
_USE_INITIAL_TOKEN = """
local left = tonumber(redis.call('GET', KEYS[1]))
if not left or left < 1 then return 0 end
if left == 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 1
"""


class Registrations:
    """The RFC 7591/7592 part of RedisStore."""

    redis: StoreClient

    async def put_initial_token(self, digest: str, uses: int, ttl: int) -> None:
        await self.redis.set(INITIAL_TOKEN_PREFIX + digest, uses, ex=ttl)

    async def use_initial_token(self, digest: str) -> bool:
        """Spend one use of the initial access token with this digest; False if it has none left
        (unknown, expired or used up)."""
        return bool(await self._use_initial_token(keys=[INITIAL_TOKEN_PREFIX + digest]))

    @functools.cached_property
    def _use_initial_token(self) -> AsyncScript:
        return self.redis.register_script(_USE_INITIAL_TOKEN)

    async def replace_client(self, client: Client) -> None:
        """Write a changed record of an existing client (SET XX: a client removed meanwhile stays
        removed, Missing), and announce it so that caches drop the old one."""
        key = PREFIX + "client:" + client.client_id
        if not await self.redis.set(key, json.dumps(client.to_json()), xx=True):
            raise Missing(f"no client {client.client_id!r}")
        await self.redis.publish(PREFIX + "client-changes", client.client_id)
