"""Issue #21 item 3, reproduced as it happened: Valkey freezes after the rotation script was sent,
redis-py times out and the client gets 503, Valkey runs the rotation when it resumes, and the
client retries the same token. By default the retry is answered and the family lives (its
successor was never used); it used to be taken for theft and revoke the family.

A dedicated Valkey (the real valkey-server process, frozen with SIGSTOP), so the session's store
never stops."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers.app import provider_of
from tests.helpers.oauth import post
from tests.helpers.outage import RECOVERY_TIMEOUT, wait_until_ready
from tests.helpers.ports import free_port
from tests.helpers.sso import App, add_app, add_user, tokens_for
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.config import Settings
from tokensrv.oauth.own_tokens import parse_refresh_token, refresh_digest

pytestmark = pytest.mark.integration


@pytest.fixture
async def frozen_store(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    store = EmbeddedValkey(tmp_path / "valkey", port=free_port())
    store.start()
    yield store
    assert store.process is not None
    os.kill(store.process.pid, signal.SIGCONT)  # never leave it stopped, whatever failed
    store.stop()


async def refresh(client: TestClient, app: App, token: str) -> tuple[int, dict[str, Any]]:
    status, body, _ = await post(client, "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": token},
                                 app.auth())
    return status, body


async def wait_rotated(client: TestClient, token: str) -> None:
    """Until the store says `token` is no longer its family's live one: the rotation ran."""
    store, family_id = provider_of(client).store, parse_refresh_token(token)
    assert family_id is not None
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while (found := await store.refresh.get_family(family_id, refresh_digest(token))) is not None and found[1]:
        assert time.monotonic() < deadline, "the rotation sent before the freeze never ran"
        await asyncio.sleep(0.05)  # polling a condition with a deadline
    assert found is not None, "the family is gone"


async def test_a_retry_after_a_503_whose_rotation_ran_keeps_the_family(
        make_client: Any, settings: Settings, frozen_store: EmbeddedValkey) -> None:
    client = await make_client(settings, redis_url=frozen_store.url)
    app = await add_app(client, "web", public=False)
    await add_user(client)
    status, warm = await refresh(client, app, (await tokens_for(client, app))["refresh_token"])
    assert status == 200, warm  # the script is loaded and the client record cached
    presented = warm["refresh_token"]

    assert frozen_store.process is not None
    pid = frozen_store.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body = await refresh(client, app, presented)  # the script is sent, no answer comes
    finally:
        os.kill(pid, signal.SIGCONT)
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    await wait_rotated(client, presented)  # Valkey ran it on resume: the answer was lost
    await wait_until_ready(client)

    status, retry = await refresh(client, app, presented)  # the client's retry
    assert status == 200, retry
    status, after = await refresh(client, app, retry["refresh_token"])  # the family lives
    assert status == 200, after
    status, body = await refresh(client, app, presented)  # its successor used: now it is reuse
    assert (status, body["error"]) == (400, "invalid_grant")
