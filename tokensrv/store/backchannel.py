"""Back-channel logout (OIDC Back-Channel Logout 1.0) in Valkey: `store.logouts`.

Keys (named by store/keyspace.py):
  rp-sessions:<sub>  hash: "<sid> <client_id>" -> until (epoch s): the clients with a
      backchannel_logout_uri that got tokens under each SSO session of the user, for as long as
      those tokens (or their refresh family) can live. One key per user: ending one session and
      ending all of them (sign out everywhere) each read and delete in ONE script. sids and client
      ids have no spaces. Expired fields are pruned whenever a field is written, so the hash is
      bounded by the user's live sessions times their clients.
  the queue (keyspace.LOGOUT_QUEUE)  Stream of delivery jobs, read by the consumer group
      "delivery" (one per store): each entry goes to one server process, which deletes it (XACK
      and XDEL) once delivered, refused, or given up. Its length is the jobs outstanding.
  the retries (keyspace.LOGOUT_RETRIES)  sorted set: jobs waiting for their next attempt,
      scored by when (epoch ms); moved back to the stream when due.
The two queue keys share a hash tag, so every queue script touches one Cluster slot.

The queue is bounded: an enqueue past QUEUE_MAX jobs (stream and retries together) is refused,
job by job (the caller counts and logs each), rather than trimming: MAXLEN would drop the oldest
jobs, which may be the ones being delivered.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection

QUEUE, RETRIES = keyspace.LOGOUT_QUEUE, keyspace.LOGOUT_RETRIES
GROUP = "delivery"


@dataclass(frozen=True)
class LogoutJob:
    """One logout token to deliver: to `client_id`, for the session `sid` of `sub`."""
    client_id: str
    sub: str
    sid: str
    attempt: int = 0  # attempts made so far

    def to_json(self) -> str:
        return json.dumps({"c": self.client_id, "s": self.sub, "i": self.sid, "a": self.attempt},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> LogoutJob | None:
        """None for an entry this release cannot read (it is dropped, not retried forever)."""
        try:
            data = json.loads(raw)
            job = cls(data["c"], data["s"], data["i"], data["a"])
        except (ValueError, KeyError, TypeError):
            return None
        ok = all(type(v) is str for v in (job.client_id, job.sub, job.sid)) and type(job.attempt) is int
        return job if ok else None


@dataclass(frozen=True)
class QueuedJob:
    entry_id: str
    job: LogoutJob | None  # None: unreadable


class LogoutStore:
    """`store.logouts`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._record = conn.script(scripts.RP_SESSIONS_RECORD)
        self._take = conn.script(scripts.RP_SESSIONS_TAKE)
        self._enqueue = conn.script(scripts.LOGOUT_ENQUEUE)
        self._finish = conn.script(scripts.LOGOUT_FINISH)
        self._promote = conn.script(scripts.LOGOUT_PROMOTE)

    # ---- which clients hold tokens of which session ----

    async def record_session_client(self, sub: str, sid: str, client_id: str, until: int, now: int) -> None:
        await self._record(keys=[keyspace.rp_sessions(sub)], args=[f"{sid} {client_id}", until, now])

    async def take_session_clients(self, sub: str, sids: Sequence[str], now: int) -> list[tuple[str, str]]:
        """(sid, client_id) of the given sessions of `sub` (all of them when `sids` is empty),
        forgotten at once: of two logouts of one session, one gets them."""
        taken = await self._take(keys=[keyspace.rp_sessions(sub)], args=[now, *sids])
        return [(sid, client_id) for sid, _, client_id in (str(t).partition(" ") for t in taken)]

    # ---- the delivery queue ----

    async def enqueue_logouts(self, jobs: Sequence[LogoutJob], max_jobs: int) -> int:
        """Queue `jobs` while the queue has room; how many were queued (the first ones)."""
        if not jobs:
            return 0
        return int(await self._enqueue(keys=[QUEUE, RETRIES], args=[max_jobs, *(j.to_json() for j in jobs)]))

    async def logout_queue_length(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:  # one slot: the shared tag
            pipe.xlen(QUEUE)
            pipe.zcard(RETRIES)
            length, retries = await pipe.execute()
        return int(length) + int(retries)

    async def read_logouts(self, consumer: str, count: int, block_ms: int | None) -> list[QueuedJob]:
        """New jobs for this consumer, waiting up to `block_ms` for one (the group is made, again
        after a FLUSHALL, when it is missing)."""
        reply: Any
        try:
            reply = await self.redis.xreadgroup(GROUP, consumer, {QUEUE: ">"}, count=count, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.create_logout_group()  # from the stream's start: jobs queued before it count
            reply = await self.redis.xreadgroup(GROUP, consumer, {QUEUE: ">"}, count=count, block=block_ms)
        return [_queued(entry) for _stream, entries in reply or () for entry in entries]

    async def create_logout_group(self) -> None:
        try:
            await self.redis.xgroup_create(QUEUE, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def claim_stale_logouts(self, consumer: str, min_idle_ms: int, count: int) -> list[QueuedJob]:
        """Jobs another consumer took and did not finish within `min_idle_ms`: it died."""
        try:
            reply = await self.redis.xautoclaim(QUEUE, GROUP, consumer, min_idle_ms, "0-0", count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return []
        return [_queued(entry) for entry in reply[1] if entry]

    async def prune_logout_consumers(self, min_idle_ms: int) -> int:
        """Forget consumers (processes) idle that long with nothing pending: every restart of a
        server adds one to the group. One with pending jobs stays until they are claimed."""
        try:
            consumers = await self.redis.xinfo_consumers(QUEUE, GROUP)
        except ResponseError:  # no stream or group yet
            return 0
        pruned = 0
        for consumer in consumers:
            if int(consumer.get("pending", 1)) == 0 and int(consumer.get("idle", 0)) >= min_idle_ms:
                await self.redis.xgroup_delconsumer(QUEUE, GROUP, str(consumer["name"]))
                pruned += 1
        return pruned

    async def finish_logout(self, entry_id: str, retry: LogoutJob | None = None, due_ms: int = 0) -> None:
        """The job is done (delivered, refused, dropped) or, with `retry`, to be tried again at `due_ms`."""
        args: list[str | int] = [entry_id, GROUP]
        if retry is not None:
            args += [retry.to_json(), due_ms]
        await self._finish(keys=[QUEUE, RETRIES], args=args)

    async def promote_due_logouts(self, now_ms: int, count: int = 100) -> int:
        return int(await self._promote(keys=[QUEUE, RETRIES], args=[now_ms, count]))


def _queued(entry: Any) -> QueuedJob:
    entry_id, fields = entry
    return QueuedJob(str(entry_id), LogoutJob.from_json(str((fields or {}).get("job", ""))))
