"""Instrumented argon2 hashers for the password pool's worker processes: real argon2 each time.

A pool pickles its hasher to every worker, so these live at module level and import only the
standard library and argon2. What a worker did reaches the test through a file (RecordingHasher)
or through multiprocessing primitives handed to the worker when it starts (GatedHasher).
"""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from argon2 import PasswordHasher

from tokensrv.passwords import START_METHOD

CHEAP = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}  # fast parameters for tests


class RecordingHasher(PasswordHasher):
    """Appends one line per call to `log`: the pid that ran it, the operation, the hash verified."""

    def __init__(self, log: Path, **parameters: int) -> None:
        super().__init__(**parameters)
        self.log = str(log)

    def _record(self, *fields: str) -> None:
        with open(self.log, "a", encoding="ascii") as out:  # one short append: whole lines
            out.write(" ".join((str(os.getpid()), *fields)) + "\n")

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        made = super().hash(password, salt=salt)
        self._record("hash", made)
        return made

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # argon2's parameter name
        self._record("verify", str(hash))
        return super().verify(hash, password)

    def records(self) -> list[tuple[int, str, str]]:
        if not os.path.exists(self.log):
            return []
        lines = Path(self.log).read_text(encoding="ascii").splitlines()
        return [(int(pid), op, arg) for pid, op, arg in (line.split(" ", 2) for line in lines)]

    def verified(self) -> int:
        return sum(op == "verify" for _, op, _ in self.records())


class GatedHasher(PasswordHasher):
    """Each verification first tells the test it started, then waits for the test to open the gate.

    Semaphores only, no Event: an Event's set() waits for every sleeper to wake, and a worker the
    test killed while it slept never does.
    """

    def __init__(self, **parameters: int) -> None:
        super().__init__(**parameters)
        context = multiprocessing.get_context(START_METHOD)
        self._gate = context.Semaphore(0)
        self.started = context.Semaphore(0)

    def open(self) -> None:
        self._gate.release()  # each verification passes it on: it stays open

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.started.release()
        if self._gate.acquire(timeout=60):
            self._gate.release()
        return super().verify(hash, password)
