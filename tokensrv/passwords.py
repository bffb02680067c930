"""argon2id hashing in a bounded thread pool: the work never runs on the event loop.

argon2-cffi releases the GIL while hashing, so one thread per core hashes in parallel while the
loop keeps serving tokens and JWKS.
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True)
class Checked:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used older parameters: store this one


class PasswordPool:
    def __init__(self, threads: int = 0, hasher: PasswordHasher | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.hasher = hasher or PasswordHasher()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="argon2")
        # Verifying an unknown username costs the same as a wrong password: hash against this.
        self._decoy = self.hasher.hash(os.urandom(16).hex())
        self.waiting = 0  # queued + running jobs: the pool's depth, for metrics

    async def _run(self, func, *args):  # type: ignore[no-untyped-def]
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)
        finally:
            self.waiting -= 1

    async def hash(self, password: str) -> str:
        result: str = await self._run(self.hasher.hash, password)
        return result

    async def check(self, stored_hash: str | None, password: str) -> Checked:
        result: Checked = await self._run(self._check, stored_hash, password)
        return result

    def _check(self, stored_hash: str | None, password: str) -> Checked:
        try:
            self.hasher.verify(stored_hash or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Checked(False)
        if stored_hash is None:
            return Checked(False)
        if self.hasher.check_needs_rehash(stored_hash):
            return Checked(True, self.hasher.hash(password))
        return Checked(True)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
