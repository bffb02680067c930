"""User records in Valkey.

Keys (store/keyspace.py):
  user:<sub>              JSON User          users  set of subs
  username:<casefolded>   -> sub (uniqueness)

A record, its name and the set are three slots on Cluster, so no write spans them in one MULTI:
each multi-key write is ordered so that the set only ever holds too many subs (list_users skips
them) and a removed user can neither sign in nor refresh from the first write on.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from redis.exceptions import WatchError

from tokensrv.store import keyspace
from tokensrv.store.connection import Connection
from tokensrv.store.records import Conflict, User


class UserStore:
    """`store.users`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._conn = conn

    async def add_user(self, user: User) -> None:
        name_key = keyspace.username(user.username)
        if not await self.redis.set(name_key, user.sub, nx=True):
            raise Conflict(f"user {user.username!r} already exists")
        # no MULTI (three slots on Cluster): the sub is listed before its record exists, so the
        # set only ever holds too many subs (list_users skips them)
        await self.redis.sadd(keyspace.USERS, user.sub)
        await self.redis.set(keyspace.user(user.sub), json.dumps(user.to_json()))

    async def get_user(self, sub: str) -> User | None:
        raw = await self.redis.get(keyspace.user(sub))
        return User.from_json(json.loads(raw)) if raw else None

    async def find_user(self, username: str) -> User | None:
        sub = await self.redis.get(keyspace.username(username))
        return await self.get_user(str(sub)) if sub else None

    async def save_user(self, user: User) -> None:
        await self.redis.set(keyspace.user(user.sub), json.dumps(user.to_json()))

    async def rehash_password(self, user: User, new_hash: str) -> bool:
        """Store `new_hash` for `user` unless its record changed since it was read. A login that
        upgrades a hash must never write back what an administrator changed meanwhile (a sign-out's
        not-before, a new password, a disable): False then, and the upgrade waits for a next login."""
        key = keyspace.user(user.sub)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if not raw or User.from_json(json.loads(raw)) != user:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                pipe.set(key, json.dumps(dataclasses.replace(user, password_hash=new_hash).to_json()))
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def update_user(self, sub: str, change: Callable[[User], User]) -> User | None:
        """`change` applied to the record as it is now (None if there is none): an update never
        writes back what a login, a password change or another update wrote meanwhile."""
        return await self._conn.update_json(keyspace.user(sub), User.from_json, change)

    async def remove_user(self, user: User) -> None:
        # the record first: from then on the user can neither sign in nor refresh; the name and
        # the listing after (a record, its name and the set are three slots on Cluster)
        await self.redis.delete(keyspace.user(user.sub))
        await self.redis.delete(keyspace.username(user.username))
        await self.redis.srem(keyspace.USERS, user.sub)

    async def list_users(self) -> list[User]:
        subs = sorted(str(s) for s in await self.redis.smembers(keyspace.USERS))
        found = [await self.get_user(s) for s in subs]
        return sorted((u for u in found if u is not None), key=lambda u: u.username.casefold())
