"""Clients refreshing their refresh families concurrently while the store fails over: each keeps
the token of its last 200, retries it after a 503 (as a client must), and records every refusal.
For the failover tests of issue #27 (Sentinel and Cluster)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from examples.topologies import ValkeyNode
from tests.helpers.app import provider_of
from tests.helpers.oauth import Registered, refresh
from tokensrv.oauth.own_tokens import parse_refresh_token, refresh_digest

RETRY_PAUSE = 0.05  # between a client's retries after a 503 (load pacing, as real clients back off)
DEADLINE = 60.0  # seconds any stage of a failover test may take


class RefreshLoad:
    def __init__(self, client: TestClient, app: Registered, tokens: list[str]) -> None:
        self.client, self.app = client, app
        self.current = list(tokens)  # per family: the refresh token of its last 200
        self.spent: list[list[str]] = [[] for _ in tokens]  # per family: the tokens it presented and got a 200 for
        self.attempts = [0] * len(tokens)  # answered requests, per family
        self.unavailable = 0  # 503s
        self.refused: list[tuple[int, int, dict[str, Any]]] = []  # (family, status, body): must stay empty
        self._stopping = False
        self._workers: asyncio.Future[list[None]] | None = None

    def start(self) -> None:
        self._workers = asyncio.gather(*(self._client(i) for i in range(len(self.current))))

    async def _client(self, i: int) -> None:
        last_ok = False
        while not (self._stopping and last_ok):
            status, body, _ = await refresh(self.client, self.app, self.current[i])
            self.attempts[i] += 1
            last_ok = status == 200
            if last_ok:
                self.spent[i].append(self.current[i])
                self.current[i] = body["refresh_token"]
            elif status == 503 and body.get("error") == "temporarily_unavailable":
                self.unavailable += 1
                await asyncio.sleep(RETRY_PAUSE)
            else:
                self.refused.append((i, status, body))  # a signed-out family: the defect
                return

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert not self.refused, f"a family was refused while waiting for {what}: {self.refused}"
            assert time.monotonic() < deadline, f"never: {what}"
            await asyncio.sleep(0.05)  # polling a condition under a deadline

    def rotated(self) -> list[int]:
        return [len(s) for s in self.spent]

    async def until_rotated_twice_more(self) -> None:
        """Every family rotated twice from now on: the store answers for all of them again."""
        after = self.rotated()
        await self.until(lambda: all(n >= m + 2 for n, m in zip(self.rotated(), after, strict=True)),
                         "every family rotated twice after the failover")

    async def stop(self) -> None:
        """Each client finishes with a 200 (so its token is the family's live one)."""
        self._stopping = True
        if self._workers is not None:
            async with asyncio.timeout(DEADLINE):
                await self._workers

    async def check_nothing_lost_or_revived(self) -> None:
        """The store failed over during the load (some 503s: else nothing was tested); every
        family's live token is its client's newest, and a token spent before the newest was used
        is refused (reuse), not honoured."""
        assert self.unavailable, "nothing failed over: nothing was tested"
        assert not self.refused, self.refused
        store = provider_of(self.client).store
        for token in self.current:
            family_id = parse_refresh_token(token)
            assert family_id is not None
            found = await store.refresh.get_family(family_id, refresh_digest(token))
            assert found is not None and found[1], "a family's live token is not its client's newest"
        for spent in self.spent:
            status, body, _ = await refresh(self.client, self.app, spent[-2])  # its successor was used
            assert (status, body.get("error")) == (400, "invalid_grant"), body


def cut_replication(replica: ValkeyNode) -> None:
    """The replica stops receiving its primary's stream (and cannot reconnect: its handshake's AUTH
    is refused) while both stay up, so it lags from here on. Not SIGSTOP: the kernel would keep
    receiving the stream for it, and a resumed replica would apply all of it."""
    with replica.client() as redis:
        redis.config_set("masterauth", "not-the-password")
        redis.client_kill_filter(_type="master")
    wait_until_true(lambda: replica.info("replication").get("master_link_status") == "down",
                    "the replica's link to be down")


def restore_replication(replica: ValkeyNode) -> None:
    with replica.client() as redis:
        redis.config_set("masterauth", "")


def wait_until_true(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)  # polling a condition under a deadline (in a thread or a sync test step)
