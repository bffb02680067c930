"""PasswordPool: argon2id in worker processes, decoy verification, rehash on outdated parameters,
a bounded queue, a killed worker failing closed, and no worker left after close()."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest
from argon2 import PasswordHasher

from tests.helpers.hashers import CHEAP, GatedHasher, RecordingHasher
from tokensrv.passwords import PasswordPool, Unavailable


@pytest.fixture
def pool(tmp_path):
    pool = PasswordPool(2, RecordingHasher(tmp_path / "argon2.log", **CHEAP))
    yield pool
    pool.close()


async def started(hasher: GatedHasher, count: int = 1) -> None:
    """Until `count` verifications have begun in the workers (a blocking wait, off the loop)."""
    loop = asyncio.get_running_loop()
    for _ in range(count):
        assert await loop.run_in_executor(None, hasher.started.acquire, True, 30)


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


async def test_hash_and_check(pool):
    stored = await pool.hash("s3cret password")
    assert stored.startswith("$argon2id$")
    assert (await pool.check(stored, "s3cret password")).ok
    assert not (await pool.check(stored, "wrong password")).ok


async def test_all_argon2_work_runs_in_the_worker_processes(pool):
    stored = await pool.hash("pw")
    await pool.check(stored, "pw")
    await pool.check(None, "pw")
    records = pool.hasher.records()
    assert len(records) == 4  # the decoy, the hash, two verifications
    assert {pid for pid, _, _ in records} <= set(pool.pids())
    assert os.getpid() not in {pid for pid, _, _ in records}


async def test_no_user_is_a_decoy_verification_in_a_worker_that_never_succeeds(pool):
    result = await pool.check(None, "anything")
    assert not result.ok and result.new_hash is None
    (decoy_pid, _, decoy), = [r for r in pool.hasher.records() if r[1] == "hash"]
    (verify_pid, _, verified), = [r for r in pool.hasher.records() if r[1] == "verify"]
    assert verified == decoy  # the decoy was verified: the same cost as a wrong password
    assert {decoy_pid, verify_pid} <= set(pool.pids()) and os.getpid() not in {decoy_pid, verify_pid}


async def test_a_user_without_a_password_is_checked_against_the_decoy_like_an_unknown_user(pool):
    # `tokensrv apply` creates users with no password yet (an empty hash): failing on the empty hash
    # at once would answer faster than a wrong password, and tell that the account has none
    result = await pool.check("", "anything")
    assert not result.ok and result.new_hash is None
    (_, _, decoy), = [r for r in pool.hasher.records() if r[1] == "hash"]
    (_, _, verified), = [r for r in pool.hasher.records() if r[1] == "verify"]
    assert verified == decoy  # the same argon2 work as a wrong password


async def test_a_damaged_hash_is_a_failed_check_not_an_error(pool):
    assert not (await pool.check("not-a-hash", "pw")).ok
    assert not (await pool.check("$argon2id$v=19$m=8,t=1,p=1$garbage", "pw")).ok


async def test_outdated_parameters_give_a_new_hash_only_on_success():
    pool = PasswordPool(1)  # the default parameters
    try:
        old = PasswordHasher(**CHEAP).hash("pw")
        checked = await pool.check(old, "pw")
        assert checked.ok and checked.new_hash and not pool.hasher.check_needs_rehash(checked.new_hash)
        assert (await pool.check(checked.new_hash, "pw")) == type(checked)(True)
        assert (await pool.check(old, "wrong")).new_hash is None
    finally:
        pool.close()


async def test_custom_parameters_reach_the_workers():
    pool = PasswordPool(1, PasswordHasher(**CHEAP))
    try:
        assert "$m=8192,t=1,p=1$" in await pool.hash("pw")
    finally:
        pool.close()


def test_the_pool_is_bounded():
    pool = PasswordPool(3, PasswordHasher(**CHEAP))
    try:
        assert pool.processes == 3 and pool._pool._max_workers == 3
    finally:
        pool.close()


async def test_past_the_queue_bound_a_check_fails_fast_and_the_others_finish():
    hasher = GatedHasher(**CHEAP)
    pool = PasswordPool(1, hasher, queue=2)
    try:
        stored = PasswordHasher(**CHEAP).hash("pw")
        accepted = [asyncio.ensure_future(pool.check(stored, "pw")) for _ in range(3)]  # 1 hashing, 2 waiting
        await started(hasher)
        assert pool.full
        with pytest.raises(Unavailable, match="queue full"):
            await pool.check(stored, "pw")
        hasher.open()
        assert [c.ok for c in await asyncio.gather(*accepted)] == [True] * 3
        assert not pool.full and (await pool.check(stored, "pw")).ok
    finally:
        pool.close()


async def test_a_killed_worker_fails_its_check_closed_and_the_next_check_succeeds():
    hasher = GatedHasher(**CHEAP)
    pool = PasswordPool(1, hasher)
    try:
        stored = PasswordHasher(**CHEAP).hash("pw")
        await pool.hash("warm")  # the decoy and this: the worker is up
        in_flight = asyncio.ensure_future(pool.check(stored, "pw"))
        await started(hasher)
        (victim,) = pool.pids()
        os.kill(victim, signal.SIGKILL)  # mid-verification, the right password
        with pytest.raises(Unavailable, match="died"):
            await in_flight  # an error, never a success
        hasher.open()
        assert (await pool.check(stored, "pw")).ok  # a new pool, a new worker
        assert not (await pool.check(None, "pw")).ok  # the decoy survived the crash
        assert victim not in pool.pids()
    finally:
        pool.close()


async def test_close_stops_every_worker_even_mid_hash():
    hasher = GatedHasher(**CHEAP)
    pool = PasswordPool(2, hasher)
    stored = PasswordHasher(**CHEAP).hash("pw")
    stuck = [asyncio.ensure_future(pool.check(stored, "pw")) for _ in range(2)]
    await started(hasher, 2)  # both workers inside a verification that would wait a minute
    pids = pool.pids()
    assert len(pids) == 2
    pool.close()
    assert all(gone(pid) for pid in pids)
    for check in stuck:
        with pytest.raises(Unavailable):
            await check
    with pytest.raises(Unavailable, match="closed"):
        await pool.hash("pw")
