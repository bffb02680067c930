"""Client records cached in each server process.

Every token request authenticates its client, and a client record changes only when an
administrator adds or removes it, so each process keeps the records it has read for a few
seconds instead of paying a Valkey round trip per request. A change is announced on a Valkey
pub/sub channel (store/clients.py publishes it) and every subscribed process drops its copy at
once; the TTL bounds what a lost message could cost.

The cache only answers while its subscription is live: subscribed, and heard from within
MAX_SILENCE seconds. The subscription is pinged every HEARTBEAT seconds, so a live one answers at
least that often. While the subscription is down a removal could go unseen, and a store that has
stopped answering (frozen by SIGSTOP, a partition: the connection stays open, nothing comes back)
must not be papered over by records read before it froze. So past MAX_SILENCE every look-up goes to
the store again, fails with the store's own timeout (a 503 to the client), and the subscription is
renewed; the cache answers again once Valkey confirms the new one.

The same subscription carries the claim rules document's announcements (store/claim_rules.py):
also_follow() names a channel and what to call on each message there, and on each new
subscription (what was announced while it was down is unknown), so that one connection per
process follows both.

On Valkey Cluster a PUBLISH reaches every node over the cluster bus, so the subscription is one
plain connection to any node; when it is lost, the next attempt goes to the next node redis-py
knows (a primary that died is replaced by its replica, which hears every announcement too).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from tokensrv.store import keyspace
from tokensrv.store.clients import ClientStore
from tokensrv.store.connection import Connection
from tokensrv.store.records import Client
from tokensrv.store.redis import RedisStore
from tokensrv.verify.store_url import StoreClient, node_client

log = logging.getLogger("tokensrv.store")

CLIENT_TTL = 5.0  # seconds a record is served from memory (unless a change is announced first)
MAX_CLIENTS = 10_000  # records kept per process; more are read from the store each time
POLL = 1.0  # seconds between checks of the subscription (and its health checks)
HEARTBEAT = 1.0  # seconds between PINGs on the subscription: a live subscription answers this often
MAX_SILENCE = 3.0  # seconds without a word on the subscription after which the cache stops answering
HEARTBEAT_MESSAGE = "tokensrv-client-cache"
MAX_BACKOFF = 5.0


class SubscriptionSilent(Exception):
    """Valkey has not answered on the subscription for MAX_SILENCE seconds."""


class ClientCache:
    def __init__(self, load: Callable[[str], Awaitable[Client | None]], ttl: float = CLIENT_TTL,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_CLIENTS) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Client]] = {}
        self._generation = 0  # bumped by every invalidation
        self.subscribed = False
        self._heard_at = 0.0  # when Valkey last said anything on the subscription (clock time)
        self._live = asyncio.Event()  # set while subscribed (for wait_live)
        self._retry = asyncio.Event()  # cuts a backoff short: the store answers again (retry_now)
        self._following = True
        self._also: dict[str, Callable[[], None]] = {}  # other channels followed (also_follow)

    def also_follow(self, channel: str, changed: Callable[[], None]) -> None:
        """Follow `channel` on the same subscription (before follow() starts): `changed()` on each
        message there, and once each time the subscription is (re)confirmed."""
        self._also[channel] = changed

    @property
    def generation(self) -> int:
        """Bumped whenever the cache forgets a record (a change announced): what others keep of the
        clients (the CORS origin index) is stale once it moved."""
        return self._generation

    @property
    def heard_at(self) -> float:
        """When Valkey last said anything on the subscription (clock time)."""
        return self._heard_at

    @property
    def live(self) -> bool:
        """Subscribed, and heard from recently enough that no announced change can have been missed."""
        return self.subscribed and self._clock() - self._heard_at <= MAX_SILENCE

    def retry_now(self) -> None:
        """The store answers again: subscribe now rather than at the end of the backoff, which
        after a failover of a few seconds has grown to seconds (kept as the readiness probe's lag)."""
        self._retry.set()

    async def wait_live(self, timeout: float) -> bool:
        """Whether the subscription is live within `timeout` seconds (a starting server waits on it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._live.wait(), timeout)
        return self.live

    async def get(self, client_id: str) -> Client | None:
        now = self._clock()
        if self.subscribed and now - self._heard_at <= MAX_SILENCE:  # self.live, inlined: hot path
            entry = self._entries.get(client_id)
            if entry is not None and entry[0] > now:
                return entry[1]
        generation = self._generation
        client = await self._load(client_id)
        # Unknown ids are not kept: anyone can send them. A change announced while we were
        # reading may concern this very record, so the record is then not kept either.
        if client is not None and self.live and generation == self._generation:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[client_id] = (self._clock() + self._ttl, client)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        """Forget one record, or (None) every record."""
        self._generation += 1
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)

    def stop(self) -> None:
        self._following = False

    async def follow(self, redis: StoreClient, channel: str) -> None:
        """Until stop(): subscribe, then forget each client announced on `channel`.

        The flag is checked at least every POLL seconds: on Python 3.11 a cancellation that
        coincides with redis-py's read timeout can be lost, so cancelling alone may not stop it.
        """
        delay, lost, attempt = 0.1, False, 0
        while self._following:
            subscriber: Redis | None = None
            try:
                subscriber = await _subscriber(redis, attempt)
                attempt += 1
                async with subscriber.pubsub() as pubsub:
                    await self._subscribe(pubsub, channel)
                    if lost:  # connections released while the server went away may be stale too
                        await _close_idle(redis)
                        lost = False
                    delay = 0.1
                    await self._listen(pubsub)
            except (RedisError, OSError, SubscriptionSilent) as exc:
                if self.subscribed:
                    log.warning("client cache off: lost the change subscription (%s)", type(exc).__name__)
                    await _close_idle(redis)
                    lost = True
            finally:
                self.subscribed = False
                self._live.clear()
                if subscriber is not None and subscriber is not redis:
                    await subscriber.aclose()
            if self._following:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), delay)
                delay = 0.1 if self._retry.is_set() else min(delay * 2, MAX_BACKOFF)
                self._retry.clear()

    async def _listen(self, pubsub: PubSub) -> None:
        """Forget each announced client; ping every HEARTBEAT seconds, and give the subscription up
        when Valkey has said nothing for MAX_SILENCE (a frozen server keeps the connection open)."""
        pinged = -HEARTBEAT
        while self._following:
            now = self._clock()
            if now - self._heard_at > MAX_SILENCE:
                raise SubscriptionSilent
            if now - pinged >= HEARTBEAT:
                await pubsub.ping(HEARTBEAT_MESSAGE)
                pinged = now
            response = await pubsub.parse_response(block=False, timeout=HEARTBEAT)
            if response is None:
                continue
            self._heard_at = self._clock()
            if isinstance(response, str | bytes):
                # our PING's answer under RESP3, a plain string, which redis-py's handle_message
                # misreads once responses are decoded (it expects bytes): heard, nothing to do
                continue
            message = await pubsub.handle_message(response, ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            if message is not None and message["type"] == "message":
                if (changed := self._also.get(str(message["channel"]))) is not None:
                    changed()
                else:
                    self.invalidate(str(message["data"]))

    async def _subscribe(self, pubsub: PubSub, channel: str) -> None:
        """Serve from the cache only once Valkey has confirmed the subscription: from then on
        every change reaches us, and what changed before is forgotten here."""
        await pubsub.subscribe(channel, *self._also)
        unconfirmed = {channel, *self._also}
        while self._following:
            message = await pubsub.get_message(timeout=POLL)
            if message is not None and message["type"] == "subscribe":
                unconfirmed.discard(str(message["channel"]))
            if not unconfirmed:
                self.invalidate()
                for changed in self._also.values():
                    changed()
                self.mark_subscribed()
                return

    def mark_subscribed(self) -> None:
        """Valkey has confirmed the subscription: the cache may answer."""
        self._heard_at = self._clock()
        self.subscribed = True
        self._live.set()


async def _subscriber(redis: StoreClient, attempt: int) -> Redis:
    """Whom to subscribe through: the one server's client, or on Cluster a client of one node
    (the `attempt`-th, round the nodes, so that a dead node is not tried twice in a row)."""
    if isinstance(redis, Redis):
        return redis
    await redis.initialize()  # a client that sent nothing yet knows no node; else a no-op
    nodes = redis.get_nodes()
    return node_client(nodes[attempt % len(nodes)])


async def _close_idle(redis: StoreClient) -> None:
    """Close the idle pooled connections: they went to the server our subscription just lost (a
    restart, a failover) and are likely as dead. Closed, each reconnects on its next use instead of
    failing that request (store/connect.py: commands are not retried). Not on Cluster: closing a
    node's free connections there races with the commands the cluster client is sending on them
    (seen under load as 500s from inside redis-py), and the cluster client drops a failed node's
    connections itself."""
    if not isinstance(redis, Redis):
        return
    with contextlib.suppress(RedisError, OSError):
        await redis.connection_pool.disconnect(inuse_connections=False)


class CachedClients(ClientStore):
    """`store.clients` of a CachingStore: look-ups through a ClientCache, which this process's own
    changes invalidate at once (the other processes', by the announcement)."""

    def __init__(self, conn: Connection, ttl: float, clock: Callable[[], float]) -> None:
        super().__init__(conn)
        self.cache = ClientCache(super().get_client, ttl, clock)

    async def get_client(self, client_id: str) -> Client | None:
        return await self.cache.get(client_id)

    async def remove_client(self, client_id: str) -> bool:
        removed = await super().remove_client(client_id)
        self.cache.invalidate(client_id)  # this process at once; the others by the announcement
        return removed

    async def update_client(self, client_id: str, change: Callable[[Client], Client]) -> Client | None:
        updated = await super().update_client(client_id, change)
        self.cache.invalidate(client_id)  # this process at once; the others by the announcement
        return updated


class CachingStore(RedisStore):
    """RedisStore whose client look-ups go through a ClientCache (`client_cache`): start_following()
    after the event loop runs, and `await stop_following()` before closing the connection."""

    def __init__(self, redis: StoreClient, ttl: float = CLIENT_TTL, clock: Callable[[], float] = time.monotonic,
                 durable_replicas: int = 0) -> None:
        super().__init__(redis, durable_replicas)
        self.clients = CachedClients(self.conn, ttl, clock)
        self.client_cache: ClientCache = self.clients.cache
        self._follower: asyncio.Task[None] | None = None

    def follow_claim_rules(self, changed: Callable[[], None]) -> None:
        """Call `changed()` when the claim rules document is announced, and on each new subscription
        (before start_following)."""
        self.client_cache.also_follow(keyspace.CLAIM_RULES_CHANGES, changed)

    def start_following(self) -> None:
        self._follower = asyncio.create_task(self.client_cache.follow(self.redis, keyspace.CLIENT_CHANGES),
                                             name="tokensrv-client-changes")

    async def stop_following(self) -> None:
        self.client_cache.stop()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
