"""The argon2 pool stays out of the way of token and JWKS requests: sized to the cores a worker
may use, its processes at a lower CPU priority."""
from __future__ import annotations

import dataclasses
import os
import sys

import pytest
from argon2 import PasswordHasher

from tests.hashers import CHEAP
from tokensrv.app import argon2_threads
from tokensrv.config import Settings
from tokensrv.passwords import ARGON2_NICE, PasswordPool


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
