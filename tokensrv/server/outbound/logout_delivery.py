"""Delivering back-channel logout tokens: the task each server process runs (oauth/backchannel.py
decides what to send and what an answer means; store/backchannel.py holds the queue).

Each round: retries that are due go back to the queue; jobs another process took and never
finished (it died) are claimed; else new jobs are read, waiting up to READ_BLOCK_MS for one. The
consumer group gives each job to one process. A job is finished (XACK, XDEL) only after its POST
was answered or given up, so a process that dies mid-delivery leaves it to another: delivery is
at least once (a POST answered just before a crash is sent again), which §2.8 allows, since the
client acts on the `sid`, not on the token's `jti`.

The POST (§2.5): `logout_token=...` form-encoded, no redirects followed (a 3xx is a refusal: it
could lead anywhere), a total timeout, the answer's body not read. The token is never logged.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import socket

import aiohttp
from redis.exceptions import RedisError

from tokensrv.errors import OAuthError
from tokensrv.oauth import Provider
from tokensrv.oauth.backchannel import Outcome, logout_token, outcome_of, retry_delay
from tokensrv.oauth.clients.metadata import RegistrationError, check_backchannel_logout_uri
from tokensrv.observability import events
from tokensrv.store import Client
from tokensrv.store.backchannel import LogoutJob, QueuedJob

log = logging.getLogger("tokensrv.backchannel")

POST_TIMEOUT = 5.0  # seconds for a whole POST
CLAIM_IDLE_MS = 60_000  # a job taken this long ago and not finished: its process is gone
READ_BLOCK_MS = 1_000  # under the store's socket timeout (store/connect.py)
BATCH = 16  # jobs delivered at once by one process
STORE_RETRY = 2.0  # seconds between rounds while the store is unreachable
PRUNE_EVERY = 600  # seconds between looks for consumers of processes long gone ...
PRUNE_IDLE_MS = 3_600_000  # ... idle this long with nothing pending


def consumer_name() -> str:
    """Unique per process and start, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class LogoutDelivery:
    def __init__(self, p: Provider, http: aiohttp.ClientSession, consumer: str | None = None,
                 claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.p = p
        self.http = http
        self.consumer = consumer or consumer_name()
        self.claim_idle_ms = claim_idle_ms
        self._pruned_at = float("-inf")
        self._stopping = False

    def stop(self) -> None:
        """End run() after the current round. Cancelling the task is not enough on its own: a
        cancellation that arrives while redis-py waits in the blocking XREADGROUP can be swallowed
        by the client (seen with uvloop: a server whose port was taken never exited), and run()
        would go on reading."""
        self._stopping = True

    async def run(self) -> None:
        """Until stopped or cancelled; a store outage only pauses it."""
        while not self._stopping:
            try:
                await self.step()
            except (RedisError, OSError) as exc:
                log.warning("back-channel logout delivery: store unreachable (%s)", type(exc).__name__)
                await asyncio.sleep(STORE_RETRY)
            except Exception:  # a bug must not end delivery for this process; its jobs stay pending
                log.exception("back-channel logout delivery failed")
                await asyncio.sleep(STORE_RETRY)

    async def step(self, block_ms: int | None = READ_BLOCK_MS) -> int:
        """One round; how many jobs it handled. `block_ms` None: do not wait for new jobs."""
        store = self.p.store
        if self.p.clock() - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = self.p.clock()
            await store.logouts.prune_logout_consumers(PRUNE_IDLE_MS)
        await store.logouts.promote_due_logouts(self.p.now_ms())
        jobs = await store.logouts.claim_stale_logouts(self.consumer, self.claim_idle_ms, BATCH)
        if not jobs:
            jobs = await store.logouts.read_logouts(self.consumer, BATCH, block_ms)
        await asyncio.gather(*(self.deliver(job) for job in jobs))
        return len(jobs)

    async def deliver(self, queued: QueuedJob) -> None:
        """POST one job's logout token and settle the job by the answer."""
        found = await self._target(queued)
        if found is None:
            await self.p.store.logouts.finish_logout(queued.entry_id)
            return
        job, client, uri = found
        try:
            status = await self.post(uri, logout_token(self.p, client, job))
        except OAuthError:  # no signing key loaded yet: as if unanswered, try later
            status = None
        await self._settle(queued.entry_id, job, status)

    async def _target(self, queued: QueuedJob) -> tuple[LogoutJob, Client, str] | None:
        """The job, its client and the URI to POST to; None (with the reason logged) for none."""
        job = queued.job
        if job is None:
            log.warning("back-channel logout job %s is unreadable: dropped", queued.entry_id)
            return None
        client = await self.p.store.clients.get_client(job.client_id)
        if client is None or not client.backchannel_logout_uri:
            events.backchannel_logout("dropped", job.client_id, job.sid, "the client is gone or has no URI")
            return None
        try:
            return job, client, check_backchannel_logout_uri(client.backchannel_logout_uri)
        except RegistrationError:  # written by hand or under other rules: not a URI we POST to
            events.backchannel_logout("refused", job.client_id, job.sid, "the registered URI is not acceptable")
            return None

    async def _settle(self, entry_id: str, job: LogoutJob, status: int | None) -> None:
        outcome, answer = outcome_of(status), "no answer" if status is None else f"HTTP {status}"
        attempts = job.attempt + 1
        if outcome is Outcome.RETRY and attempts < self.p.settings.backchannel_max_attempts:
            delay = retry_delay(attempts, self.p.settings.backchannel_retry_delay)
            events.backchannel_logout("retried", job.client_id, job.sid, f"attempt {attempts}: {answer}")
            retry = dataclasses.replace(job, attempt=attempts)
            await self.p.store.logouts.finish_logout(entry_id, retry, self.p.now_ms() + int(delay * 1000))
            return
        if outcome is Outcome.DELIVERED:
            events.backchannel_logout("delivered", job.client_id, job.sid)
        elif outcome is Outcome.REFUSED:
            events.backchannel_logout("refused", job.client_id, job.sid, answer)
        else:
            events.backchannel_logout("dropped", job.client_id, job.sid, f"{answer} after {attempts} attempts")
        await self.p.store.logouts.finish_logout(entry_id)

    async def post(self, uri: str, token: str) -> int | None:
        """The answer's status, or None without one (timeout, refused or reset connection)."""
        try:
            async with self.http.post(uri, data={"logout_token": token}, allow_redirects=False,
                                      timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT)) as resp:
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("back-channel logout POST failed: %s", type(exc).__name__)  # not the URI's query
            return None
