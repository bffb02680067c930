"""argon2id hashing in a bounded thread pool: the work never runs on the event loop.

argon2-cffi releases the GIL while hashing, so one thread per core hashes in parallel while the
loop keeps serving tokens and JWKS. The pool's threads run at the lowest CPU priority (nice
ARGON2_NICE): a login costs about 0.3 s of CPU and token or JWKS requests a fraction of a
millisecond, so when both want a core the short requests go first and logins use what is left.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")
THREAD_PREFIX = "argon2"
# The lowest priority: on a busy core the event loop's thread gets about 68 times the CPU of each
# argon2 thread, so a burst of logins leaves token and JWKS latency near its idle level (p99 2x
# idle at nice 19, 3.6x at nice 10, 11x at 0: `make bench`, 4 concurrent logins on one core). Logins
# run at nearly full speed while the server has idle time, and slow down only on a saturated core.
ARGON2_NICE = 19


def lower_priority() -> None:
    """Lower the calling thread's CPU priority; the lane threads argon2 starts inherit it.

    Linux keeps a nice value per thread (elsewhere the call fails on the thread id, harmlessly).
    Not SCHED_IDLE, although it halves the latency logins add to token and JWKS requests on a busy
    core (`make bench`): on a core that something else keeps busy, an idle-class thread gets so
    little CPU that a login takes tens of seconds, and a hashing thread that holds the GIL while
    it waits for the CPU stalls the event loop for longer.
    """
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + ARGON2_NICE))


@dataclass(frozen=True)
class Checked:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used older parameters: store this one


class PasswordPool:
    def __init__(self, threads: int = 0, hasher: PasswordHasher | None = None,
                 on_depth: Callable[[int], None] | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.hasher = hasher or PasswordHasher()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=THREAD_PREFIX,
                                        initializer=lower_priority)
        # An unknown username is verified against this decoy, so it costs the same as a wrong
        # password. Made in the pool too: even the constructor keeps argon2 off the caller's thread.
        self._decoy: Future[str] = self._pool.submit(self.hasher.hash, os.urandom(16).hex())
        self.waiting = 0  # queued + running jobs: the pool's depth
        self._on_depth = on_depth  # told each new depth (the server's metrics gauge)

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        self._count(+1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)
        finally:
            self._count(-1)

    def _count(self, change: int) -> None:
        self.waiting += change
        if self._on_depth is not None:
            self._on_depth(self.waiting)

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def check(self, stored_hash: str | None, password: str) -> Checked:
        """Whether `password` matches; `stored_hash=None` (no such user) is a decoy check, never ok."""
        return await self._run(self._check, stored_hash, password)

    def _check(self, stored_hash: str | None, password: str) -> Checked:
        try:
            self.hasher.verify(stored_hash or self._decoy.result(), password)
        except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
            return Checked(False)
        if stored_hash is None:
            return Checked(False)
        if self.hasher.check_needs_rehash(stored_hash):
            return Checked(True, self.hasher.hash(password))
        return Checked(True)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
