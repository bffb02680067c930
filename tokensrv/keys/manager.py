"""Key rotation in a running fleet: every instance watches keys/, one at a time performs a step.

The instance holding the Redis lock re-reads keys/ and re-decides before it acts, so a step that
another instance just performed is never performed twice. The others reload within
KEY_CHECK_INTERVAL seconds because they watch the folder. A reader takes the folder whole
(KeyFolder.snapshot) and keeps signing with its last good key rather than adopt a folder in which
that key is still published but none is current.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from tokensrv.config import Settings
from tokensrv.keys.folder import KeyFolder, KeyRing
from tokensrv.keys.signing import SigningKey, Step, apply_step, current_key, next_step
from tokensrv.store import Locks

log = logging.getLogger("tokensrv.keys")
LOCK_TTL = 60
T = TypeVar("T")


class LockBusy(Exception):
    """Another instance is performing a rotation step right now."""


class KeyManager:
    def __init__(self, settings: Settings, locks: Locks, now: Callable[[], int]) -> None:
        self.settings = settings
        self.folder = KeyFolder(settings.keys_dir)
        self.locks = locks
        self.now = now
        self.ring = KeyRing.build([])  # what this instance publishes and signs with
        self.keys: tuple[SigningKey, ...] = ()  # keys/ as last read whole: what the schedule decides on
        self.fresh = False  # whether `keys` is the folder as the last reload found it
        self._fingerprint: Any = None
        self._reported: set[str] = set()
        self._holding: str | None = None  # why the last reload kept the ring, logged once

    async def reload(self, force: bool = False) -> bool:
        """Re-read keys/ if it changed. Returns whether the ring changed."""
        fingerprint = await _blocking(self.folder.fingerprint)
        if fingerprint == self._fingerprint and not force:
            return False
        snapshot = await _blocking(self.folder.snapshot)
        self.fresh = snapshot is not None
        if snapshot is None:
            self._hold("keys/ changed during every read: serving the keys read before until it settles")
            return False
        for problem in set(snapshot.problems) - self._reported:
            log.error(problem)
        self._reported = set(snapshot.problems)
        self.keys = snapshot.keys
        ring = KeyRing.build(snapshot.keys, snapshot.problems)
        kept = self.ring.signing
        if ring.signing is None and kept is not None and ring.by_kid(kept.kid) is not None:
            # no step leaves a folder like this (a promotion writes its new current key first):
            # an operator's edit or a writer stopped half-way. The key still published keeps
            # signing; one that left the folder (revoked, removed) never does. The fingerprint
            # stays unrecorded, so every check reads again until a key is current.
            self._hold(f"keys/ has no current key: still signing with {kept.kid} until one is current")
            return False
        if self._holding is not None:
            log.info("keys/ is consistent again")
            self._holding = None
        before = self.ring.jwks_etag, kept and kept.kid
        self.ring = ring
        self._fingerprint = snapshot.fingerprint
        return before != (self.ring.jwks_etag, self.ring.signing and self.ring.signing.kid)

    def _hold(self, reason: str) -> None:
        if reason != self._holding:
            log.warning(reason)
            self._holding = reason

    async def tick(self) -> list[Step]:
        """Perform whatever the schedule wants now, if this instance wins the lock."""
        await self.reload()
        if next_step(self.keys, self.now(), self.settings) is None:
            return []
        return await self._steps_under_lock()

    async def rotate_now(self) -> list[Step]:
        """`tokensrv keys rotate`: retire the current key as soon as the next one may sign.

        The next key signs only once it has been published for JWKS_MAX_AGE; until then the
        request is remembered on the current key and the schedule completes it.
        """
        def request_rotation() -> None:
            current = current_key(self.keys)
            if current is not None:
                self.folder.write(dataclasses.replace(current, rotate_after=self.now()))
        return await self._steps_under_lock(request_rotation)

    async def revoke(self, kid: str) -> list[Step]:
        """`tokensrv keys revoke`: a compromised key leaves the JWKS and signing at once.

        Its file goes; if it was signing, the schedule's recovery path promotes the next key at
        once (there is no waiting for caches when the alternative is signing with a leaked key).
        """
        def remove() -> None:
            key = next((k for k in self.keys if k.kid == kid), None)
            if key is None:
                raise KeyError(kid)
            upcoming = sorted((k for k in self.keys if k.state == "next"), key=lambda k: k.created_at)
            if key.state == "current" and upcoming:
                # the successor signs before the file goes: no instance ever reads a folder
                # without a signing key (it would answer 503 until the schedule's recovery)
                self._perform(Step("promote", upcoming[0].kid))
            self.folder.remove(kid)
        return await self._steps_under_lock(remove)

    async def _steps_under_lock(self, prepare: Callable[[], None] | None = None) -> list[Step]:
        async with self.locks.lock("keys", LOCK_TTL) as mine:
            if not mine:
                if prepare is not None:  # an operator's request must not vanish silently
                    raise LockBusy("another instance holds the key rotation lock; try again shortly")
                return []
            await self.reload(force=True)
            if prepare is not None:
                if not self.fresh:
                    raise LockBusy("keys/ kept changing while it was read; try again shortly")
                await _blocking(prepare)
                await self.reload(force=True)
            done = []
            # each decision on the folder as just read: never on a read that failed (it would
            # repeat the step just performed)
            while self.fresh and (step := next_step(self.keys, self.now(), self.settings)) is not None:
                await _blocking(self._perform, step)
                await self.reload(force=True)
                log.info("key rotation step: %s", step.describe())
                done.append(step)
                if len(done) > 4:  # a bug guard: each step makes the next one unnecessary
                    break
            return done

    def _perform(self, step: Step) -> None:
        writes, removals = apply_step(self.keys, step, self.now(), self.settings.key_algorithm)
        # the new current key is written before the old one is retired: never a moment with none
        for key in sorted(writes, key=lambda k: k.state != "current"):
            self.folder.write(key)
        for kid in removals:
            self.folder.remove(kid)

    async def run(self) -> None:
        """The schedule: forever, every KEY_CHECK_INTERVAL seconds. Failures are logged, not fatal."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be down: keep serving, retry later
                log.warning("key rotation check failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.key_check_interval)


async def _blocking(func: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)
