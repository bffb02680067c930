"""The store on a real Valkey Cluster (3 primaries, 3 replicas), beyond the store contract (which
runs there with the other topology-parametrised suites): the slots of the key layout, the
revocation feed and its mirror, the client cache's change subscription, a kill -9 of a primary
that only its own slots notice, and one while its replica lags (issue #27)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from examples.topologies import ClusterTopology
from tests.helpers.clock import FakeClock
from tests.helpers.oauth import add_app, add_user, login
from tests.helpers.poll import eventually
from tests.helpers.refresh_load import RefreshLoad, cut_replication, restore_replication, wait_until_true
from tests.helpers.store import NOW, D, family, rotate
from tests.helpers.verify import AUDIENCE
from tokensrv.config import Settings
from tokensrv.oauth.own_tokens import parse_refresh_token, refresh_digest
from tokensrv.store import Client, Revocation, Rotated, User, keyspace
from tokensrv.store.cache import CachingStore
from tokensrv.store.redis import RedisStore
from tokensrv.verify import store_url
from tokensrv.verify.metrics import VerifierMetrics
from tokensrv.verify.mirror import RevocationMirror


@pytest.fixture(scope="session")
def redis_url(cluster_topology: ClusterTopology) -> str:
    """Overrides conftest's: every test here runs on the real Cluster (the store contract runs
    there too, with the other topology-parametrised suites)."""
    return cluster_topology.url


@pytest.fixture
def store(redis: RedisCluster) -> RedisStore:
    return RedisStore(redis)


def ids_on(redis: RedisCluster, prefix: str, node_port: int, count: int, avoid: int | None = None) -> list[str]:
    """Ids whose key `prefix + id` lives on the primary at `node_port` (or, with `avoid`, anywhere
    but there), so a test knows whom a failure touches."""
    found, i = [], 0
    while len(found) < count:
        name = f"id{i}"
        owner = redis.get_node_from_key(prefix + name).port
        if (avoid is None and owner == node_port) or (avoid is not None and owner != avoid):
            found.append(name)
        i += 1
    return found


# ---- beyond the contract ----

async def test_a_revocation_and_the_deny_list_check_are_in_the_feeds_slot(store: RedisStore, redis: RedisCluster):
    feed_slot = redis.keyslot(keyspace.FEED)
    assert all(redis.keyslot(keyspace.deny(kind, "x")) == feed_slot for kind in ("jti", "sid", "sub", "kid"))
    await store.denylist.revoke([Revocation("jti", "j1", NOW + 60, NOW), Revocation("sub", "u1", NOW + 60, NOW),
                        Revocation("sid", "s1", NOW + 60, NOW)], NOW, ended_until=NOW + 600)
    assert await store.denylist.denied("j1", "s1", "u1") == (True, True, NOW)
    assert await store.refresh.session_ended("s1")


async def test_the_rotation_reads_the_user_and_the_session_marker_from_their_slots(store: RedisStore):
    await store.users.add_user(User("sub1", "alice", "hash"))
    await store.refresh.create_family(family(sid="s1"), D[0], "j0", NOW + 900, idle_ttl=300)
    outcome, user, ended = await store.refresh.rotate_with_user("fam1", D[0], D[1], "app", NOW, "j1", NOW + 900,
                                                        300, 0)
    assert isinstance(outcome, Rotated) and user is not None and user.username == "alice" and not ended
    await store.denylist.revoke([Revocation("sid", "s1", NOW + 60, NOW)], NOW, ended_until=NOW + 600)
    _, _, ended = await store.refresh.rotate_with_user("fam1", D[1], D[2], "app", NOW, "j2", NOW + 900, 300, 0)
    assert ended


async def test_a_hash_upgrade_still_refuses_a_user_changed_meanwhile(store: RedisStore):
    await store.users.add_user(User("sub1", "alice", "old"))
    read = await store.users.get_user("sub1")
    assert await store.users.rehash_password(read, "new")  # WATCH/MULTI on one key works on Cluster
    assert not await store.users.rehash_password(read, "newer")  # the record changed since `read`
    assert (await store.users.get_user("sub1")).password_hash == "new"


async def test_the_rotation_lock_has_one_holder(store: RedisStore):
    async with store.locks.lock("keys", 60) as first, store.locks.lock("keys", 60) as second:
        assert first and not second
    async with store.locks.lock("keys", 60) as again:
        assert again  # released by its holder


async def test_a_burst_of_login_attempts_never_passes_more_than_the_limit(store: RedisStore):
    keys = ["login:user:a", "login:addr:x"]
    counted = await asyncio.gather(*(store.limits.count_attempt(keys, 600) for _ in range(8)))
    passed = [c for c in counted if all(count <= 3 for count, _ in c)]
    assert len(passed) <= 3
    assert sorted(count for c in counted for count, _ in c[:1]) == list(range(1, 9))  # each key exact


async def test_the_mirror_loads_and_follows_the_feed_on_the_cluster(store: RedisStore, redis_url: str):
    clock = FakeClock()
    now = int(clock())
    await store.denylist.revoke([Revocation("jti", "before", now + 900, now)], now)
    mirror = RevocationMirror(redis_url, VerifierMetrics(CollectorRegistry(), AUDIENCE), clock)
    await mirror.start()
    try:
        assert mirror.synced and "before" in mirror.state.jti  # loaded from the feed's primary
        await store.denylist.revoke([Revocation("sub", "u1", now + 900, now),
                                     Revocation("sid", "s1", now + 900, now)], now)
        await mirror.wait_for(lambda: "u1" in mirror.state.sub and "s1" in mirror.state.sid)
        assert mirror.state.revoked("x", "s1", "u2", now, now) == "sid"
    finally:
        await mirror.close()


async def test_client_changes_reach_the_cache_over_cluster_pubsub(redis_url: str, store: RedisStore):
    await store.clients.add_client(Client("svc", None, grant_types=("client_credentials",)))
    caching = CachingStore(store_url.connect(redis_url, decode_responses=True))
    caching.start_following()
    try:
        assert await caching.client_cache.wait_live(10)
        assert await caching.clients.get_client("svc") is not None  # now cached in this process
        await store.clients.remove_client("svc")  # another process: only the announcement tells this one

        async def forgotten() -> bool:
            return await caching.clients.get_client("svc") is None
        await eventually(forgotten, "the removal to reach the cache", timeout=20)
    finally:
        await caching.stop_following()
        await caching.redis.aclose()


# ---- a primary dies ----

async def test_killing_a_primary_fails_only_its_slots_until_its_replica_takes_over(
        cluster_topology: ClusterTopology, store: RedisStore, redis: RedisCluster):
    # the victim holds neither the feed nor the user the rotations read ("sub1"), so that only
    # the doomed family's requests touch it
    needed = {redis.get_node_from_key(keyspace.FEED).port, redis.get_node_from_key(keyspace.user("sub1")).port}
    victim = next(n.port for n in redis.get_primaries() if n.port not in needed)
    doomed = ids_on(redis, keyspace.family(""), victim, 1)[0]
    spared = ids_on(redis, keyspace.family(""), 0, 1, avoid=victim)[0]
    for family_id in (doomed, spared):
        await store.refresh.create_family(family(family_id), D[0], "j0", NOW + 900, idle_ttl=NOW)
    await redis.execute_command("WAIT", 1, 5000, target_nodes=redis.get_node_from_key(keyspace.family(doomed)))

    victim_node = cluster_topology.node_at(victim)
    victim_node.kill()
    try:
        await _fail_over_the_victim(store, doomed, spared, victim, redis)
    finally:  # whatever failed: later tests get a whole cluster again
        cluster_topology.restart(victim_node)  # rejoins as a replica
        cluster_topology.wait_healthy()


async def _fail_over_the_victim(store: RedisStore, doomed: str, spared: str, victim: int, redis: RedisCluster) -> None:
    """The doomed family's slot is out of service until the replica takes over: its rotation fails
    (a RedisError, the request's 503) or, with redis-py 8.2's cluster client, is held until the
    slot's new primary answers; meanwhile the other slots serve as usual, from the same client."""
    digests = iter(refresh_digest(f"spared {i}") for i in range(10_000))

    async def doomed_rotates() -> bool:
        try:
            return isinstance(await rotate(store, doomed, D[0], D[1], "app", NOW, "j1", NOW + 900, NOW, 0), Rotated)
        except RedisError:
            return False

    taken_over = asyncio.create_task(eventually(doomed_rotates, "the replica to take over", timeout=30, interval=0))
    live, served_meanwhile = D[0], 0
    while not taken_over.done():  # bounded by the task's deadline
        new = next(digests)
        assert isinstance(await rotate(store, spared, live, new, "app", NOW, "j", NOW + 900, NOW, 0), Rotated)
        live, served_meanwhile = new, served_meanwhile + 1
        await store.denylist.revoke([Revocation("jti", f"during-{new[:8]}", NOW + 60, NOW)], NOW)
    await taken_over
    assert served_meanwhile  # the other slots served while the dead primary's could not
    assert victim not in {n.port for n in redis.get_primaries()}


async def test_a_failover_while_a_replica_lags_loses_no_rotation_and_revives_no_spent_token(
        cluster_topology: ClusterTopology, make_client: Any, settings: Settings, redis: RedisCluster):
    """Issue #27 on Cluster, with TOKENSRV_DURABLE_REPLICAS=1: the replica of the primary holding the
    most families stops receiving its stream under concurrent refreshes, that primary is killed
    (-9) while the replica lags, and the replica takes its slots over. Every rotation answered 200
    was confirmed by it; the others were answered 503 and are retried: no family is signed out, no
    spent token is live."""
    client = await make_client(settings, durable_replicas=1)
    app = await add_app(client)
    await add_user(client)
    load = RefreshLoad(client, app, [(await login(client, app))["refresh_token"] for _ in range(9)])
    owners = [redis.get_node_from_key(keyspace.family(str(parse_refresh_token(t)))).port for t in load.current]
    victim = cluster_topology.node_at(max(set(owners), key=owners.count))
    replica = next(n for n in cluster_topology.by_role("replica")
                   if int(n.info("replication")["master_port"]) == victim.port)  # type: ignore[call-overload]
    on_victim = [i for i, port in enumerate(owners) if port == victim.port]
    load.start()
    try:
        try:
            await load.until(lambda: min(load.rotated()) >= 2, "every family rotated")
            await asyncio.to_thread(cut_replication, replica)  # the replica lags from now on
            try:
                since = list(load.attempts)
                await load.until(lambda: all(load.attempts[i] > since[i] for i in on_victim),
                                 "a refresh of each family on the primary answered while its replica lags")
                victim.kill()
            finally:
                restore_replication(replica)
            await asyncio.to_thread(wait_until_true, lambda: cluster_topology.role(replica) == "primary",
                                    "the lagging replica to take the slots over")
        finally:
            if not victim.running:  # whatever failed: the session's cluster is whole again for the next tests
                cluster_topology.restart(victim)  # rejoins as a replica (in this thread: see examples/topologies.py)
                await asyncio.to_thread(cluster_topology.wait_healthy)
        await load.until_rotated_twice_more()
    finally:
        await load.stop()
    await load.check_nothing_lost_or_revived()
