"""Waiting for a server to come back by itself after its store failed (test_outage, test_refresh_retry)."""
from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.helpers.poll import eventually

RECOVERY_TIMEOUT = 20.0


async def wait_until_ready(client: TestClient) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready, "the server to recover by itself", timeout=RECOVERY_TIMEOUT)
