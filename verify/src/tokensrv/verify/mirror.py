"""The revocation mirror: a local copy of tokensrv's deny-list, kept current by the revocation feed,
so a verifier checks revocation with no network call.

Loading never misses a revocation: the feed's last entry id is recorded FIRST, then every deny-list
key (`tokensrv:deny:{tokensrv:revocations}:*`) is read (value and expiry), then the feed is followed
from the recorded id with XREAD BLOCK; anything revoked during the load arrives through the feed
(applying an entry twice changes nothing). After a disconnection the mirror resumes from the last
entry it applied; if entries after it may have been trimmed from the stream, it loads the deny-list
again.

Feed entries (Stream `tokensrv:revocations`): k kind (jti|sid|sub|family|kid), v value,
u until (epoch s), t revoked at (epoch s; for `sub` the not-before: tokens with iat <= t are revoked).

On Valkey Cluster the deny-list keys carry the feed's name as their hash tag: the feed and the
whole deny-list are in one slot, so the load scans the one primary that holds it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from . import store_url
from .counters import Metrics
from .feed import FeedEntry, parse_entry, stream_id

log = logging.getLogger("tokensrv.verify")

FEED = "tokensrv:revocations"
DENY_PREFIX = "tokensrv:deny:{" + FEED + "}:"  # the feed's slot on Cluster
SCAN_BATCH = 500
PURGE_EVERY = 60.0  # seconds between sweeps of expired entries
MAX_BACKOFF = 2.0  # seconds between reconnection attempts, at most


def needs_resync(info: dict[str, Any] | None, last_id: str) -> bool:
    """Whether entries after `last_id` may be missing from the stream: it was lost, replaced, or
    trimmed past us. Conservative: when in doubt, load the deny-list again (it is cheap)."""
    last = stream_id(last_id)
    if info is None:
        return last != (0, 0)
    if stream_id(info["last-generated-id"]) < last:
        return True  # not the stream we followed
    first = info.get("first-entry")
    if not first:
        return stream_id(info["last-generated-id"]) > last  # entries came after us, all trimmed
    return stream_id(first[0]) > last


class RevocationState:
    """What is revoked, and until when. No I/O; the time is handed in.

    Entries are kept `grace` seconds past their `until` (the verifier's leeway): a token is still
    accepted that long after its `exp`, so its revocation must last as long.
    """

    def __init__(self, grace: float = 0.0) -> None:
        self.grace = grace
        self.jti: dict[str, float] = {}
        self.sid: dict[str, float] = {}
        self.kid: dict[str, float] = {}
        self.sub: dict[str, tuple[int, float]] = {}  # sub -> (not-before, until)

    def add(self, kind: str, value: str, until: float, at: int = 0) -> bool:
        """Apply one revocation; False for kinds a verifier has no use for (`family`)."""
        until += self.grace
        if kind == "sub":
            not_before, old_until = self.sub.get(value, (at, until))
            self.sub[value] = (max(not_before, at), max(old_until, until))
            return True
        table = {"jti": self.jti, "sid": self.sid, "kid": self.kid}.get(kind)
        if table is None:
            return False
        table[value] = max(table.get(value, until), until)
        return True

    def revoked(self, jti: str, sid: str | None, sub: str, iat: float, now: float) -> str | None:
        """Why a token is revoked (`jti`, `sid` or `sub`), or None."""
        if self.jti.get(jti, 0.0) > now:
            return "jti"
        if sid and self.sid.get(sid, 0.0) > now:
            return "sid"
        entry = self.sub.get(sub)
        if entry is not None and entry[1] > now and iat <= entry[0]:
            return "sub"
        return None

    def kid_revoked(self, kid: str, now: float) -> bool:
        return self.kid.get(kid, 0.0) > now

    def purge(self, now: float) -> None:
        for table in (self.jti, self.sid, self.kid):
            for value in [v for v, until in table.items() if until <= now]:
                del table[value]
        for value in [v for v, (_, until) in self.sub.items() if until <= now]:
            del self.sub[value]

    def __len__(self) -> int:
        return len(self.jti) + len(self.sid) + len(self.kid) + len(self.sub)


class RevocationMirror:
    """Follows the feed in a background task; `state` is what verifications read."""

    def __init__(self, redis_url: str, metrics: Metrics, clock: Callable[[], float],
                 grace: float = 0.0, block_seconds: float = 5.0, connect_timeout: float = 3.0,
                 load_timeout: float = 30.0) -> None:
        try:  # a bad URL fails here, in the caller's hands, not later in the background task
            store_url.parse(redis_url)
        except ValueError as exc:
            raise ValueError(f"redis_url: {exc} (got {store_url.redact(redis_url)!r})") from None
        self.state = RevocationState(grace)
        self.last_id = "0-0"  # the last feed entry applied (or recorded by the last load)
        self.synced = False
        self.connected = False
        self.lag_seconds = 0.0  # feed entry added -> applied, for the last batch applied
        self.disconnected_since: float | None = clock()
        self._redis_url = redis_url
        self._metrics = metrics
        self._clock = clock
        self._block_ms = int(block_seconds * 1000)
        self._connect_timeout = connect_timeout
        self._load_timeout = load_timeout
        self._subscribers: list[Callable[[FeedEntry], None]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._redis: store_url.StoreClient | None = None
        self._purged_at = clock()

    # ---- for verifications, tests and benchmarks ----

    def on_revocation(self, callback: Callable[[FeedEntry], None]) -> None:
        """Call `callback` with each feed entry as it is applied (not for entries found by a load)."""
        self._subscribers.append(callback)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once `predicate()` holds; it is re-checked whenever the mirror applies feed
        entries, loads the deny-list, connects or disconnects. TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- lifecycle ----

    async def start(self) -> None:
        """Load the deny-list once (a failure is logged: the background task keeps trying), then
        follow the feed in the background."""
        # No socket_timeout: redis-py would then wrap writes in asyncio.wait_for, which on Python
        # 3.11 can swallow a cancellation (close() would hang); our own deadlines are below.
        self._redis = store_url.connect(
            self._redis_url, decode_responses=True, client_name="tokensrv-verify", socket_timeout=None,
            socket_connect_timeout=self._connect_timeout,
            retry=Retry(NoBackoff(), 0))  # reconnection is ours: it also reports the state
        try:
            await self._connect()
        except (RedisError, OSError) as exc:
            self._disconnected(exc)
        self._task = asyncio.create_task(self._run(), name="tokensrv-verify-mirror")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                if not self.connected:
                    await self._connect()
                    delay = 0.05
                await self._follow()
            except (RedisError, OSError) as exc:
                self._disconnected(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def _connect(self) -> None:
        """Load, or resume where we left off when nothing after that can have been lost."""
        async with asyncio.timeout(self._load_timeout):
            if not self.synced or needs_resync(await self._stream_info(), self.last_id):
                await self._load()
        self.connected, self.disconnected_since = True, None
        log.info("revocation mirror following the feed from %s", self.last_id)
        self._notify()

    def _disconnected(self, exc: BaseException) -> None:
        if self.connected or self.disconnected_since is None:
            log.warning("revocation mirror disconnected: %s: %s", type(exc).__name__, exc)
            self.disconnected_since = self._clock()
        self.connected = False
        self._notify()

    # ---- the load, and the feed ----

    async def _stream_info(self) -> dict[str, Any] | None:
        assert self._redis is not None
        try:
            info: dict[str, Any] = await self._redis.xinfo_stream(FEED)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        return info

    async def _load(self) -> None:
        assert self._redis is not None
        info = await self._stream_info()  # first: what is revoked during the scan comes by the feed
        last_id = info["last-generated-id"] if info else "0-0"
        batch: list[str] = []
        async for key in self._scan_deny_list():
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                await self._load_keys(batch)
                batch = []
        await self._load_keys(batch)
        self.last_id, self.synced = last_id, True
        self._metrics.mirror_resyncs.inc()
        log.info("revocation mirror loaded %d deny-list entries", len(self.state))

    def _scan_deny_list(self) -> Any:
        assert self._redis is not None
        if isinstance(self._redis, RedisCluster):  # only the feed's primary holds deny-list keys
            return self._redis.scan_iter(match=DENY_PREFIX + "*", count=1000,
                                         target_nodes=self._redis.get_node_from_key(FEED))
        return self._redis.scan_iter(match=DENY_PREFIX + "*", count=1000)

    async def _load_keys(self, keys: list[str]) -> None:
        if not keys:
            return
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.expiretime(key)
            replies = await pipe.execute()
        for key, value, expires in zip(keys, replies[::2], replies[1::2], strict=True):
            kind, _, ident = key[len(DENY_PREFIX):].partition(":")
            if value is None or expires == -2:
                continue  # expired while we scanned
            until = float("inf") if expires == -1 else float(expires)
            try:
                self.state.add(kind, ident, until, int(value) if kind == "sub" else 0)
            except ValueError:
                log.warning("deny-list key %.80s has an unreadable value", key)

    async def _follow(self) -> None:
        assert self._redis is not None
        while True:
            async with asyncio.timeout(self._block_ms / 1000 + self._connect_timeout):  # a dead peer
                reply: Any = await self._redis.xread({FEED: self.last_id}, count=1000, block=self._block_ms)
            for _stream, entries in reply or ():
                self._apply(entries)
            now = self._clock()
            if now - self._purged_at >= PURGE_EVERY:
                self.state.purge(now)
                self._purged_at = now

    def _apply(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in entries:
            self.last_id = entry_id
            entry = parse_entry(entry_id, fields)
            if entry is None:
                log.warning("revocation feed entry %s is malformed", entry_id)
                continue
            self.state.add(entry.kind, entry.value, entry.until, entry.at)
            self._metrics.mirror_events.labels(entry.kind).inc()
            for callback in self._subscribers:
                try:
                    callback(entry)
                except Exception:
                    log.exception("on_revocation callback failed")
        if entries:
            added_ms = stream_id(entries[-1][0])[0]
            self.lag_seconds = max(self._clock() - added_ms / 1000, 0.0)
        self._notify()
