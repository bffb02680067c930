"""Key rotation in a running fleet: every instance watches keys/, one at a time performs a step.

The instance holding the Redis lock re-reads keys/ and re-decides before it acts, so a step that
another instance just performed is never performed twice. The others reload within
KEY_CHECK_INTERVAL seconds because they watch the folder.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .config import Settings
from .keys import KeyFolder, KeyRing, Step, apply_step, current_key, next_step
from .store import Locks

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
        self.ring = KeyRing.build([])
        self._fingerprint: Any = None
        self._reported: set[str] = set()

    async def reload(self, force: bool = False) -> bool:
        """Re-read keys/ if it changed. Returns whether the ring changed."""
        fingerprint = await _blocking(self.folder.fingerprint)
        if fingerprint == self._fingerprint and not force:
            return False
        keys, problems = await _blocking(self.folder.load)
        for problem in set(problems) - self._reported:
            log.error(problem)
        self._reported = set(problems)
        before = self.ring.jwks_etag, self.ring.signing and self.ring.signing.kid
        self.ring = KeyRing.build(keys, problems)
        self._fingerprint = fingerprint
        return before != (self.ring.jwks_etag, self.ring.signing and self.ring.signing.kid)

    async def tick(self) -> list[Step]:
        """Perform whatever the schedule wants now, if this instance wins the lock."""
        await self.reload()
        if next_step(self.ring.keys, self.now(), self.settings) is None:
            return []
        return await self._steps_under_lock()

    async def rotate_now(self) -> list[Step]:
        """`tokensrv keys rotate`: retire the current key as soon as the next one may sign.

        The next key signs only once it has been published for JWKS_MAX_AGE; until then the
        request is remembered on the current key and the schedule completes it.
        """
        def request_rotation() -> None:
            current = current_key(self.ring.keys)
            if current is not None:
                self.folder.write(dataclasses.replace(current, rotate_after=self.now()))
        return await self._steps_under_lock(request_rotation)

    async def revoke(self, kid: str) -> list[Step]:
        """`tokensrv keys revoke`: a compromised key leaves the JWKS and signing at once.

        Its file goes; if it was signing, the schedule's recovery path promotes the next key at
        once (there is no waiting for caches when the alternative is signing with a leaked key).
        """
        def remove() -> None:
            key = self.ring.by_kid(kid)
            if key is None:
                raise KeyError(kid)
            upcoming = sorted((k for k in self.ring.keys if k.state == "next"), key=lambda k: k.created_at)
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
                await _blocking(prepare)
                await self.reload(force=True)
            done = []
            while (step := next_step(self.ring.keys, self.now(), self.settings)) is not None:
                await _blocking(self._perform, step)
                await self.reload(force=True)
                log.info("key rotation step: %s", step.describe())
                done.append(step)
                if len(done) > 4:  # a bug guard: each step makes the next one unnecessary
                    break
            return done

    def _perform(self, step: Step) -> None:
        writes, removals = apply_step(self.ring.keys, step, self.now(), self.settings.key_algorithm)
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
            except Exception as exc:  # noqa: BLE001 -- the store may be down: keep serving, retry later
                log.warning("key rotation check failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.key_check_interval)


async def _blocking(func: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)
