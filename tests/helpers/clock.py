"""Injected time for the tests."""
from __future__ import annotations

import time


class FakeClock:
    """Injected time: tests move it explicitly, nothing sleeps.

    It starts at the real time, so the TTLs the store derives from it are real TTLs in Valkey.
    """

    def __init__(self, start: float | None = None) -> None:
        self.t = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
