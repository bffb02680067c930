"""Sentinel failover without loss: with TOKENSRV_DURABLE_REPLICAS=1 a write is answered 200 only
once a replica has it, so a kill -9 of the primary under load loses no acknowledged revocation, and
(issue #27) a kill -9 while the replica lags loses no refresh rotation answered 200 and brings no
spent token back; while no replica can confirm, writes fail closed (503). The app follows the
promoted primary by itself. Its own Sentinel topology (a primary, one replica, three sentinels):
the session's one stays whole for the other suites."""
from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from examples.topologies import SentinelTopology, ValkeyNode, wait_until
from tests.helpers.app import provider_of
from tests.helpers.oauth import (
    Registered,
    add_app,
    add_client,
    add_user,
    claims_of,
    login,
    post,
    refresh,
    token,
)
from tests.helpers.refresh_load import RefreshLoad, cut_replication, restore_replication
from tokensrv.config import load_settings
from tokensrv.store import Client, keyspace
from tokensrv.store.durable import NotDurable

# KNOWN ISSUE, not ours to hide elsewhere: after a failover under load, redis-py (8.1) leaves some
# of the connections it opened to the sentinels (to find the new primary) unclosed; they surface as
# ResourceWarnings when collected. They are collected here, after each test of this module, and
# only these tests ignore them (the rest of the suite still fails on any leak).
LEAK_WARNINGS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning",
                                           "ignore::ResourceWarning")

CONCURRENCY = 8
RETRY_PAUSE = 0.05  # between a worker's retries of a revocation that failed closed (load pacing)
LOAD_DEADLINE = 60.0  # seconds the load may take to get every revocation acknowledged


@pytest.fixture(scope="module")
def failover_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    topology = SentinelTopology(tmp_path_factory.mktemp("failover"))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture(autouse=True)
def collect_leaked_connections() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
async def durable_client(make_client: Callable[..., Any], failover_topology: SentinelTopology,
                         tmp_path: Path) -> TestClient:
    settings = load_settings({}, redis_url=failover_topology.url, keys_dir=str(tmp_path / "keys"),
                             port=8080, durable_replicas=1)
    with failover_topology.primary().client() as primary:
        primary.flushdb()
    await asyncio.to_thread(wait_until, lambda: replica_confirms(failover_topology),
                            "a write to be confirmed by the replica (after the last test's failover)")
    client: TestClient = await make_client(settings)
    return client


def replica_confirms(topology: SentinelTopology) -> bool:
    """A write on the primary reaches the replica within a second (WAIT on the same connection)."""
    with topology.primary().client() as primary, primary.pipeline(transaction=False) as pipe:
        pipe.set(keyspace.PREFIX + "test:probe", "1", ex=60)
        pipe.execute_command("WAIT", 1, 1000)
        return int(pipe.execute()[-1]) >= 1


async def access_tokens(client: TestClient, caller: Registered, count: int) -> list[str]:
    issued = []
    for _ in range(count):
        status, body, _ = await token(client, caller, grant_type="client_credentials")
        assert status == 200, body
        issued.append(body["access_token"])
    return issued


async def revoke_status(client: TestClient, caller: Registered, access_token: str) -> int:
    status, body, _ = await post(client, "/oauth2/revoke", {"token": access_token}, caller.basic)
    assert status in (200, 503), (status, body)
    if status == 503:
        assert body["error"] == "temporarily_unavailable"
    return status


def jti_of(access_token: str) -> str:
    return str(claims_of(access_token)["jti"])


def stored_revocations(node: ValkeyNode, jtis: list[str]) -> tuple[set[str], set[str]]:
    """Of `jtis`: those with a deny-list key on `node`, and those in its revocation feed."""
    with node.client() as redis:
        denied = {j for j in jtis if redis.exists(keyspace.deny("jti", j))}
        in_feed = {fields["v"] for _, fields in redis.xrange(keyspace.FEED) if fields["k"] == "jti"}
    return denied, in_feed & set(jtis)


async def test_without_a_replica_to_confirm_a_write_fails_closed(
        durable_client: TestClient, failover_topology: SentinelTopology) -> None:
    svc = await add_client(durable_client, "svc")
    app = await add_app(durable_client)
    await add_user(durable_client)
    issued = await login(durable_client, app)
    first, second = await access_tokens(durable_client, svc, 2)
    replica = failover_topology.replicas()[0]
    replica.kill()
    try:
        assert await revoke_status(durable_client, svc, first) == 503  # not claimed before a replica has it
        status, body, _ = await refresh(durable_client, app, issued["refresh_token"])  # nor a rotation
        assert (status, body["error"]) == (503, "temporarily_unavailable")
        with pytest.raises(NotDurable):  # nor a new client (the CLI's one line: the store is unreachable)
            await provider_of(durable_client).store.clients.add_client(Client("late", None))
    finally:
        failover_topology.rejoin(replica)  # in this thread: see examples/topologies.py
        await asyncio.to_thread(failover_topology.wait_healthy)
    assert await revoke_status(durable_client, svc, second) == 200
    status, body, _ = await refresh(durable_client, app, issued["refresh_token"])  # a retry of the lost answer
    assert status == 200, body


@LEAK_WARNINGS
async def test_kill_9_of_the_primary_under_load_loses_no_acknowledged_revocation(
        durable_client: TestClient, failover_topology: SentinelTopology) -> None:
    svc = await add_client(durable_client, "svc")
    tokens = await access_tokens(durable_client, svc, 150)
    before, during, after = tokens[:40], tokens[40:120], tokens[120:]
    acknowledged: list[str] = []  # every token whose revocation was answered 200

    async def revoke_all(batch: list[str]) -> None:
        statuses = await asyncio.gather(*(revoke_status(durable_client, svc, t) for t in batch))
        assert set(statuses) == {200}, statuses
        acknowledged.extend(batch)

    await revoke_all(before)

    pending, failed_closed, failed_before_kill = list(during), [], []
    under_way, killed = asyncio.Event(), False

    async def worker() -> None:
        while pending:
            access_token = pending.pop()
            if await revoke_status(durable_client, svc, access_token) == 200:
                acknowledged.append(access_token)
                if len(acknowledged) >= len(before) + 20:
                    under_way.set()
                continue
            (failed_closed if killed else failed_before_kill).append(access_token)
            pending.insert(0, access_token)  # the load keeps going: this one again later
            await asyncio.sleep(RETRY_PAUSE)

    load = asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    async with asyncio.timeout(LOAD_DEADLINE):
        await under_way.wait()
    killed = True
    old = await asyncio.to_thread(failover_topology.kill_primary)
    new = await asyncio.to_thread(failover_topology.wait_failover, old)
    # a replica again, so revocations can be confirmed (in this thread: see examples/topologies.py)
    failover_topology.rejoin(old)
    await asyncio.to_thread(failover_topology.wait_healthy)
    async with asyncio.timeout(LOAD_DEADLINE):
        await load  # every revocation of the load acknowledged in the end, without a restart
    assert not failed_before_kill
    assert failed_closed, "the load ended before the failover: nothing was tested"

    await revoke_all(after)  # the failover is over: nothing fails any more
    assert new is not old and failover_topology.primary() is new
    jtis = [jti_of(t) for t in acknowledged]
    assert len(set(jtis)) == len(tokens)
    denied, in_feed = await asyncio.to_thread(stored_revocations, new, jtis)
    assert denied == set(jtis)
    assert in_feed == set(jtis)


FAMILIES = 6


@LEAK_WARNINGS
async def test_a_failover_while_the_replica_lags_loses_no_rotation_and_revives_no_spent_token(
        durable_client: TestClient, failover_topology: SentinelTopology) -> None:
    """Issue #27: the replica stops taking the stream (its link cut) under concurrent refreshes, the
    primary is killed (-9) while it lags, the lagging replica is promoted. Every rotation answered
    200 is on it (the answer waited for it: the ones it missed were answered 503 and are retried),
    so no client presenting its newest token is taken for a thief, and no spent token is live."""
    app = await add_app(durable_client)
    await add_user(durable_client)
    load = RefreshLoad(durable_client, app, [(await login(durable_client, app))["refresh_token"]
                                             for _ in range(FAMILIES)])
    load.start()
    try:
        try:
            await load.until(lambda: min(load.rotated()) >= 2, "every family rotated")
            replica = failover_topology.replicas()[0]
            await asyncio.to_thread(cut_replication, replica)  # the replica lags from now on
            try:
                since = list(load.attempts)
                await load.until(lambda: all(n > m for n, m in zip(load.attempts, since, strict=True)),
                                 "every family's refresh answered while the replica lags")
                old = failover_topology.kill_primary()
            finally:
                restore_replication(replica)
            assert await asyncio.to_thread(failover_topology.wait_failover, old) is replica
        finally:
            if not all(node.running for node in failover_topology.data_nodes):  # whatever failed: whole again
                failover_topology.rejoin(next(n for n in failover_topology.data_nodes if not n.running))
                await asyncio.to_thread(failover_topology.wait_healthy)
        await load.until_rotated_twice_more()
    finally:
        await load.stop()
    await load.check_nothing_lost_or_revived()


@LEAK_WARNINGS
async def test_readyz_is_200_as_soon_as_the_instance_serves_again_after_a_failover(
        make_client: Callable[..., Any], failover_topology: SentinelTopology, tmp_path: Path) -> None:
    """Issue #27: /readyz lagged the first 2xx after a failover by about a second, because the
    client-change subscription was retried on its backoff (grown to ~1 s by then). A 200 token
    request, then at once /readyz: 200 (it resubscribes when the store answers)."""
    settings = load_settings({}, redis_url=failover_topology.url, keys_dir=str(tmp_path / "keys"), port=8080)
    with failover_topology.primary().client() as primary:
        primary.flushdb()
    client: TestClient = await make_client(settings)
    svc = await add_client(client, "svc")
    assert (await client.get("/readyz")).status == 200
    old = failover_topology.kill_primary()
    try:
        deadline = asyncio.get_running_loop().time() + LOAD_DEADLINE
        while (await token(client, svc, grant_type="client_credentials"))[0] != 200:  # 503 until promoted
            assert asyncio.get_running_loop().time() < deadline, "never served again"
            await asyncio.sleep(RETRY_PAUSE)  # polling a condition under a deadline
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.json()
    finally:
        failover_topology.rejoin(old)  # in this thread: see examples/topologies.py
        await asyncio.to_thread(failover_topology.wait_healthy)
