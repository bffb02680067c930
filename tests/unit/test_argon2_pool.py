"""The argon2 pool stays out of the way of token and JWKS requests: sized to the cores a worker
may use, its processes at a lower CPU priority."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.helpers.hashers import CHEAP
from tokensrv.config import Settings
from tokensrv.passwords import ARGON2_NICE, PasswordPool
from tokensrv.server.app import argon2_threads


@pytest.mark.skipif(sys.platform != "linux", reason="nice values are per thread only on Linux")
async def test_pool_processes_run_below_the_event_loop_priority():
    pool = PasswordPool(1, PasswordHasher(**CHEAP))
    try:
        loop_nice = os.getpriority(os.PRIO_PROCESS, 0)
        assert await pool._run(os.getpriority, os.PRIO_PROCESS, 0) == min(19, loop_nice + ARGON2_NICE)
        assert await pool._run(os.getpid) != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, 0) == loop_nice  # the event loop keeps its priority
    finally:
        pool.close()


def test_processes_are_the_usable_cores_shared_among_the_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert argon2_threads(Settings(workers=1)) == 4
    assert argon2_threads(Settings(workers=2)) == 2
    assert argon2_threads(Settings(workers=8)) == 1
    assert argon2_threads(dataclasses.replace(Settings(), argon2_threads=3)) == 3


async def test_pool_reports_its_depth_as_jobs_come_and_go():
    """The queue-depth gauge follows every change, not just what a request happens to sample."""
    depths: list[int] = []
    pool = PasswordPool(1, PasswordHasher(**CHEAP), on_depth=depths.append)
    try:
        await pool.hash("pw")
        assert depths == [1, 0]
    finally:
        pool.close()


def pool_threads(before: set[threading.Thread]) -> list[str]:
    return [t.name for t in threading.enumerate() if t not in before]


@pytest.mark.parametrize("jobs", [0, 1, 3])
async def test_close_leaves_no_thread_of_the_pool_running(jobs: int):
    """A pool thread outliving close() raced the interpreter's exit ("Exception ignored ... Bad
    file descriptor") and held its queues' semaphores past stop_helpers() (the resource
    tracker's "leaked semaphore" warnings and tracebacks after a SIGTERM): issue 21 item 11."""
    before = set(threading.enumerate())
    pool = PasswordPool(2, PasswordHasher(**CHEAP))
    in_flight = [asyncio.ensure_future(pool.hash("pw")) for _ in range(jobs)]
    if jobs:
        await in_flight[0]
    pool.close()
    assert pool_threads(before) == []
    assert pool.pids() == []
    await asyncio.gather(*in_flight, return_exceptions=True)  # those close() abandoned failed


def test_a_pool_that_is_not_warm_starts_nothing_until_its_first_job():
    before = set(threading.enumerate())
    pool = PasswordPool(1, PasswordHasher(**CHEAP), warm=False)
    assert pool.pids() == [] and pool_threads(before) == []
    try:
        assert asyncio.run(pool.hash("pw")).startswith("$argon2id$")
        assert len(pool.pids()) == 1
    finally:
        pool.close()
    assert pool_threads(before) == []


CLOSE_THEN_EXIT = """
import asyncio
from argon2 import PasswordHasher
from tests.helpers.hashers import CHEAP
from tokensrv.passwords import PasswordPool, stop_helpers

async def main():
    pool = PasswordPool(2, PasswordHasher(**CHEAP))
    await pool.hash("pw")
    pool.close()
    stop_helpers()  # what a server process does last

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_a_process_that_closes_its_pool_and_stops_the_helpers_exits_silently(tmp_path):
    script = tmp_path / "close_then_exit.py"
    script.write_text(CLOSE_THEN_EXIT)
    root = str(Path(__file__).resolve().parents[2])
    for _ in range(3):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": root})
        assert (done.returncode, done.stderr) == (0, "")
