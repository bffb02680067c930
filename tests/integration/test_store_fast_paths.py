"""The store's fast paths against the real Valkey: the in-process client cache with its pub/sub
invalidation, and the refresh rotation that reads the user in the same round trip."""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.helpers.clock import FakeClock
from tests.helpers.poll import eventually
from tests.helpers.ports import free_port
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import new_client
from tokensrv.oauth.own_tokens import refresh_digest
from tokensrv.server.app import open_redis
from tokensrv.store import Client, RefreshFamily, Revocation, Rotated, User, keyspace
from tokensrv.store.cache import HEARTBEAT, MAX_SILENCE, CachingStore, ClientCache
from tokensrv.store.redis import RedisStore


@pytest.fixture
async def caching(redis: Redis) -> AsyncIterator[CachingStore]:
    store = CachingStore(redis)
    store.start_following()
    await eventually(lambda: store.client_cache.subscribed, "the cache to subscribe", interval=0.01)
    yield store
    await store.stop_following()


def a_client(client_id: str = "svc") -> Client:
    return new_client(client_id, ClientMetadata(grant_types=["client_credentials"]))[0]


async def add(store: CachingStore, client: Client) -> None:
    """Register, and let the cache see its own announcement of the addition go by."""
    seen = store.client_cache._generation
    await store.clients.add_client(client)
    await eventually(lambda: store.client_cache._generation > seen, "the cache to see its own announcement go by",
                     interval=0.01)


async def test_a_client_is_served_from_memory_once_read(caching, redis):
    await add(caching, a_client())
    assert (await caching.clients.get_client("svc")).client_id == "svc"
    await redis.delete(keyspace.client("svc"))  # behind the cache's back: no announcement
    assert (await caching.clients.get_client("svc")).client_id == "svc"


async def test_a_removal_by_another_process_reaches_the_cache(caching, redis):
    admin = RedisStore(redis)  # what `tokensrv client remove` uses
    seen = caching.client_cache._generation
    await admin.clients.add_client(a_client())
    await eventually(lambda: caching.client_cache._generation > seen, "the cache to see the announcement",
                     interval=0.01)
    assert await caching.clients.get_client("svc") is not None
    assert "svc" in caching.client_cache._entries
    await admin.clients.remove_client("svc")
    await eventually(lambda: "svc" not in caching.client_cache._entries, "the cache to forget svc", interval=0.01)
    assert await caching.clients.get_client("svc") is None


async def test_a_removal_in_this_process_is_seen_at_once(caching):
    await add(caching, a_client())
    assert await caching.clients.get_client("svc") is not None
    assert await caching.clients.remove_client("svc") is True
    assert await caching.clients.get_client("svc") is None


async def test_records_expire_after_the_ttl():
    clock = FakeClock(1000.0)
    reads: list[str] = []

    async def load(client_id: str) -> Client | None:
        reads.append(client_id)
        return a_client(client_id)

    cache = ClientCache(load, ttl=MAX_SILENCE / 2, clock=clock)  # expiry, not the silence bound
    cache.mark_subscribed()
    await cache.get("svc")
    await cache.get("svc")
    clock.advance(MAX_SILENCE / 2)
    assert cache.live
    await cache.get("svc")
    assert reads == ["svc", "svc"]


async def test_unknown_clients_are_not_remembered(caching):
    assert await caching.clients.get_client("nobody") is None
    assert "nobody" not in caching.client_cache._entries
    await caching.clients.add_client(a_client("nobody"))
    assert await caching.clients.get_client("nobody") is not None


async def test_without_the_subscription_every_lookup_reads_the_store(redis):
    store = CachingStore(redis)  # nobody follows the announcements
    await store.clients.add_client(a_client())
    assert await store.clients.get_client("svc") is not None
    await redis.delete(keyspace.client("svc"))
    assert await store.clients.get_client("svc") is None


async def test_stopping_ends_the_subscription_even_if_a_cancellation_is_lost(redis):
    cache = ClientCache(RedisStore(redis).clients.get_client)
    follower = asyncio.create_task(cache.follow(redis, "tokensrv:client-changes"))
    await eventually(lambda: cache.subscribed, "the cache to subscribe", interval=0.01)
    cache.stop()  # and no cancel(): as if redis-py's read timeout had swallowed it
    await asyncio.wait_for(follower, timeout=10)
    assert not cache.subscribed


async def test_a_change_announced_during_a_read_is_not_cached():
    release = asyncio.Event()

    async def slow_load(client_id: str) -> Client | None:
        await release.wait()
        return a_client(client_id)

    cache = ClientCache(slow_load)
    cache.mark_subscribed()
    reading = asyncio.create_task(cache.get("svc"))
    await asyncio.sleep(0)
    cache.invalidate("svc")  # the record the read returns may be the old one
    release.set()
    assert (await reading) is not None
    assert "svc" not in cache._entries


async def test_rotation_reads_the_user_and_the_session_end_in_the_same_round_trip(redis):
    now = int(time.time())  # Valkey expires the family on its own clock
    store = RedisStore(redis)
    d = [refresh_digest(f"token {i}") for i in range(5)]
    user = User(sub="s1", username="alice", password_hash="x")
    await store.users.add_user(user)
    family = RefreshFamily("fam1", "app", "s1", "read", now * 1000, now + 3600, sid="sid1", auth_time=now)
    await store.refresh.create_family(family, d[0], "j0", now + 900, 600)
    outcome, found, ended = await store.refresh.rotate_with_user("fam1", d[0], d[1], "app", now, "j1", now + 900,
                                                         600, 0)
    assert isinstance(outcome, Rotated) and outcome.family.sub == "s1"
    assert found == user and ended is False
    await store.denylist.revoke([Revocation("sid", "sid1", now + 900, now)], now, ended_until=now + 3600)
    outcome, found, ended = await store.refresh.rotate_with_user("fam1", d[1], d[2], "app", now, "j2", now + 900,
                                                         600, 0)
    assert isinstance(outcome, Rotated) and found == user and ended is True
    again, _, _ = await store.refresh.rotate_with_user("fam1", d[0], d[3], "app", now, "j3", now + 900, 600, 0)
    assert type(again).__name__ == "Reused"
    gone, nobody, ended = await store.refresh.rotate_with_user("fam1", d[2], d[4], "app", now, "j4", now + 900, 600, 0)
    assert (gone, nobody, ended) == ("unknown", None, False)


async def test_the_rotation_finds_the_user_of_any_packed_sub(redis):
    """The script names the user's key from the family's sub, stored packed (16 bytes in base64url
    for 32 hex digits: store/refresh.py _pack_sub) and unpacked in Lua: every base64url character
    in every position, and the bits the last character pads, come back as Python packed them."""
    now, store = int(time.time()), RedisStore(redis)
    subs = ["0" * 32, "f" * 32, "fbefbefbefbefbefbefbefbefbefbeff", *(secrets.token_hex(16) for _ in range(60))]
    for i, sub in enumerate(subs):
        await store.users.add_user(User(sub=sub, username=f"u{i}", password_hash="x"))
        await store.refresh.create_family(RefreshFamily(f"fam{i}", "app", sub, "read", now * 1000, now + 3600),
                                          refresh_digest(f"t{i}"), "j0", now + 900, 600)
        _, found, _ = await store.refresh.rotate_with_user(f"fam{i}", refresh_digest(f"t{i}"), refresh_digest(f"n{i}"),
                                                           "app", now, "j1", now + 900, 600, 0)
        assert found is not None and found.sub == sub


async def commandstats(redis: Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in (await redis.info("commandstats")).items()}


async def test_a_rotation_is_one_script_call_that_reads_each_key_once(redis):
    """What a refresh costs the store (docs/performance.md): one round trip, and inside the script
    each key read once: the family (its list, which also tells a family of the earlier layout, and
    its expiry), the user and the session's end; then the family's two changed values, its trim and
    its idle end."""
    now, store = int(time.time()), RedisStore(redis)
    d = [refresh_digest(f"token {i}") for i in range(2)]
    await store.users.add_user(User(sub="s1", username="alice", password_hash="x"))
    await store.refresh.create_family(RefreshFamily("fam1", "app", "s1", "read", now * 1000, now + 3600,
                                                    sid="sid1"), d[0], "j0", now + 900, 600)
    await store.refresh.rotate_with_user("fam1", d[0], refresh_digest("warm"), "app", now, "jx", now + 900, 600, 0)
    await store.refresh.create_family(RefreshFamily("fam2", "app", "s1", "read", now * 1000, now + 3600,
                                                    sid="sid1"), d[0], "j0", now + 900, 600)
    before = await commandstats(redis)
    outcome, _, _ = await store.refresh.rotate_with_user("fam2", d[0], d[1], "app", now, "j1", now + 900, 600, 0)
    after = await commandstats(redis)
    assert isinstance(outcome, Rotated)
    spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert spent == {"evalsha": 1, "lrange": 1, "expiretime": 1, "get": 1, "exists": 1,
                     "lset": 2, "ltrim": 1, "expireat": 1, "info": 1}


async def test_the_rotation_pipeline_loads_its_script_when_the_store_lost_it(redis):
    """The pipeline sends EVALSHA; after a store restart or SCRIPT FLUSH it loads the script, once."""
    now = int(time.time())
    store = RedisStore(redis)
    d = [refresh_digest(f"token {i}") for i in range(2)]
    await store.refresh.create_family(RefreshFamily("fam1", "app", "s1", "read", now * 1000, now + 3600), d[0], "j0",
                              now + 900, 600)
    await redis.script_flush()
    outcome, _, _ = await store.refresh.rotate_with_user("fam1", d[0], d[1], "app", now, "j1", now + 900, 600, 0)
    assert isinstance(outcome, Rotated)
    assert await redis.script_exists(store.refresh._rotate.sha) == [True]


async def test_after_a_store_restart_no_request_fails_on_a_stale_pooled_connection(tmp_path):
    """Losing the subscription closes the idle pooled connections, which would each fail once."""
    server = EmbeddedValkey(tmp_path / "valkey", port=free_port(), appendonly=False)
    server.start()
    redis = open_redis(server.url)
    store = CachingStore(redis)
    store.start_following()
    try:
        await eventually(lambda: store.client_cache.subscribed, "the cache to subscribe", interval=0.01)
        await asyncio.gather(*(store.users.get_user(f"u{i}") for i in range(8)))  # several pooled connections
        seen = store.client_cache._generation
        server.stop()
        server.start()  # same port: the pooled connections now point at a closed socket
        await eventually(lambda: store.client_cache.subscribed and store.client_cache._generation > seen,
                         "the cache to subscribe again and see the announcement", interval=0.01)
        for i in range(8):
            assert await store.users.get_user(f"u{i}") is None  # no ConnectionError
    finally:
        await store.stop_following()
        await redis.aclose()
        server.stop()


async def test_an_idle_subscription_stays_live_on_its_heartbeat(tmp_path):
    """With nothing announced, the heartbeat's answers alone keep the subscription live well past
    MAX_SILENCE: the cache keeps answering from memory and never renews the subscription (each
    renewal closes the idle pooled connections, which requests then have to open again)."""
    server = EmbeddedValkey(tmp_path / "valkey", port=free_port(), appendonly=False)
    server.start()
    redis = open_redis(server.url)
    clock = FakeClock(time.monotonic())
    store = CachingStore(redis, ttl=10 * MAX_SILENCE, clock=clock)  # records outlive the test
    store.start_following()
    try:
        await eventually(lambda: store.client_cache.live, "the cache's subscription to be live", interval=0.01)
        await add(store, a_client())
        assert (await store.clients.get_client("svc")) is not None  # cached from now on
        before = await redis.info("commandstats")
        for _ in range(round(2 * MAX_SILENCE / HEARTBEAT)):
            clock.advance(HEARTBEAT)
            await eventually(lambda: store.client_cache.heard_at >= clock(), "this beat's answer to be heard",
                             interval=0.01)
            assert store.client_cache.live
        assert (await store.clients.get_client("svc")) is not None
        after = await redis.info("commandstats")
        assert after["cmdstat_subscribe"]["calls"] == before["cmdstat_subscribe"]["calls"]  # never renewed
        assert after["cmdstat_get"]["calls"] == before["cmdstat_get"]["calls"]  # answered from memory
        assert after["cmdstat_ping"]["calls"] > before["cmdstat_ping"]["calls"]
    finally:
        await store.stop_following()
        await redis.aclose()
        server.stop()


async def test_a_silent_subscription_stops_the_cache_answering(tmp_path):
    """A frozen Valkey (SIGSTOP) keeps the subscription's connection open and says nothing. Once
    it has been silent for MAX_SILENCE the cache answers nothing from memory: the look-up goes to
    the store and fails with the store's timeout. After SIGCONT it renews the subscription."""
    server = EmbeddedValkey(tmp_path / "valkey", port=free_port(), appendonly=False)
    server.start()
    redis = open_redis(server.url)
    clock = FakeClock(time.monotonic())
    store = CachingStore(redis, clock=clock)
    store.start_following()
    pid = server.process.pid  # type: ignore[union-attr]
    try:
        await eventually(lambda: store.client_cache.live, "the cache's subscription to be live", interval=0.01)
        await add(store, a_client())
        assert (await store.clients.get_client("svc")) is not None  # cached from now on
        os.kill(pid, signal.SIGSTOP)
        clock.advance(MAX_SILENCE / 2)
        assert (await store.clients.get_client("svc")) is not None  # silent for less than the bound: still trusted
        clock.advance(MAX_SILENCE)
        assert not store.client_cache.live
        with pytest.raises(RedisTimeoutError):
            await store.clients.get_client("svc")
        os.kill(pid, signal.SIGCONT)
        await eventually(lambda: store.client_cache.live, "the cache's subscription to be live", timeout=30,
                         interval=0.01)
        assert (await store.clients.get_client("svc")) is not None
    finally:
        os.kill(pid, signal.SIGCONT)
        await store.stop_following()
        await redis.aclose()
        server.stop()
