"""PasswordPool: argon2id in its own threads, decoy verification, rehash on outdated parameters."""
from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher

from tokensrv.passwords import THREAD_PREFIX, PasswordPool

CHEAP = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


class RecordingHasher(PasswordHasher):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threads: list[str] = []
        self.verified = 0

    def hash(self, password, *, salt=None) -> str:
        self.threads.append(threading.current_thread().name)
        return super().hash(password, salt=salt)

    def verify(self, hash, password) -> bool:
        self.threads.append(threading.current_thread().name)
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def pool():
    hasher = RecordingHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    pool = PasswordPool(2, hasher)
    yield pool
    pool.close()


async def test_hash_and_check(pool):
    stored = await pool.hash("s3cret password")
    assert stored.startswith("$argon2id$")
    assert (await pool.check(stored, "s3cret password")).ok
    assert not (await pool.check(stored, "wrong password")).ok


async def test_all_argon2_work_runs_in_the_pool_threads(pool):
    stored = await pool.hash("pw")
    await pool.check(stored, "pw")
    await pool.check(None, "pw")
    loop_thread = threading.current_thread().name
    assert len(pool.hasher.threads) >= 4  # the decoy, the hash, two verifications
    assert all(name.startswith(THREAD_PREFIX) for name in pool.hasher.threads)
    assert loop_thread not in pool.hasher.threads


async def test_no_user_is_a_real_verification_that_never_succeeds(pool):
    result = await pool.check(None, "anything")
    assert not result.ok and result.new_hash is None
    assert pool.hasher.verified == 1  # the decoy was verified: the same cost as a wrong password


async def test_a_damaged_hash_is_a_failed_check_not_an_error(pool):
    assert not (await pool.check("not-a-hash", "pw")).ok
    assert not (await pool.check("$argon2id$v=19$m=8,t=1,p=1$garbage", "pw")).ok


async def test_outdated_parameters_give_a_new_hash_only_on_success():
    pool = PasswordPool(1)  # the default parameters
    try:
        old = CHEAP.hash("pw")
        checked = await pool.check(old, "pw")
        assert checked.ok and checked.new_hash and not pool.hasher.check_needs_rehash(checked.new_hash)
        assert (await pool.check(checked.new_hash, "pw")) == type(checked)(True)
        assert (await pool.check(old, "wrong")).new_hash is None
    finally:
        pool.close()


def test_the_pool_is_bounded():
    pool = PasswordPool(3, CHEAP)
    try:
        assert pool.threads == 3 and pool._pool._max_workers == 3
    finally:
        pool.close()
