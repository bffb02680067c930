"""Password checks: argon2 in worker processes (the loop keeps serving), rate limits per username
and per client address in Valkey, a decoy verification for unknown users, hash upgrades, and
the pool's failures answered 503 (its queue full, a worker killed), never a login."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest
from argon2 import PasswordHasher

from tests.helpers.app import provider_of
from tests.helpers.hashers import GatedHasher, RecordingHasher
from tests.helpers.oauth import PASSWORD, add_app, add_user, login, token
from tokensrv.cli.commands import admin_provider
from tokensrv.errors import SlowDown
from tokensrv.oauth.credentials import check_credentials
from tokensrv.oauth.endpoints.revocation import revoke_user
from tokensrv.passwords import PasswordPool
from tokensrv.store import keyspace


@pytest.fixture
def use_pool():
    """Swap a provider's password pool for one with an instrumented hasher; put it back after."""
    swapped: list[tuple[object, PasswordPool, PasswordPool]] = []

    def use(client, pool: PasswordPool) -> None:
        p = provider_of(client)
        swapped.append((p, p.passwords, pool))
        p.passwords = pool

    yield use
    for p, original, pool in swapped:
        p.passwords = original
        pool.close()


async def test_the_loop_keeps_serving_while_logins_hash(make_client, settings, use_pool):
    client = await make_client(settings, argon2_threads=2)
    app = await add_app(client)
    await add_user(client)
    hasher = GatedHasher()
    use_pool(client, PasswordPool(2, hasher))
    logins = [asyncio.ensure_future(token(client, app, grant_type="password", username="alice", password=PASSWORD))
              for _ in range(6)]
    loop = asyncio.get_running_loop()
    for _ in range(2):  # both argon2 workers are now inside a verification, the others queued
        assert await loop.run_in_executor(None, hasher.started.acquire, True, 30)
    answers = await asyncio.gather(*(client.get(path) for path in ["/.well-known/jwks.json", "/healthz"] * 10))
    assert [a.status for a in answers] == [200] * 20
    assert not any(task.done() for task in logins)  # every login still in flight while the loop served
    hasher.open()
    assert [status for status, _, _ in await asyncio.gather(*logins)] == [200] * 6


async def test_an_unknown_username_costs_one_argon2_verification(client, use_pool, tmp_path):
    app = await add_app(client)
    await add_user(client)
    hasher = RecordingHasher(tmp_path / "argon2.log")
    pool = PasswordPool(1, hasher)
    use_pool(client, pool)
    for username, password in (("alice", "wrong password"), ("nobody", PASSWORD)):
        before = hasher.verified()
        status, _body, _ = await token(client, app, grant_type="password", username=username, password=password)
        assert status == 400 and hasher.verified() == before + 1
    assert {pid for pid, _, _ in hasher.records()} == set(pool.pids())  # all of it in the worker


async def test_failures_are_limited_per_username_with_retry_after(make_client, settings, redis):
    client = await make_client(settings, login_max_failures=3, login_failure_window=600)
    app = await add_app(client)
    await add_user(client)
    for _ in range(3):
        status, body, _ = await token(client, app, grant_type="password", username="alice", password="nope nope")
        assert status == 400
    status, body, headers = await token(client, app, grant_type="password", username="ALICE", password=PASSWORD)
    assert status == 429 and body["error"] == "slow_down"
    assert 0 < int(headers["Retry-After"]) <= 600
    assert 0 < await redis.ttl(keyspace.failures("login:user:alice")) <= 600  # the counter carries its window


async def test_failures_are_limited_per_client_address_across_usernames(make_client, settings):
    client = await make_client(settings, login_max_failures=3)
    app = await add_app(client)
    await add_user(client)
    for name in ("x1", "x2", "x3"):
        assert (await token(client, app, grant_type="password", username=name, password="nope nope"))[0] == 400
    status, _, headers = await token(client, app, grant_type="password", username="alice", password=PASSWORD)
    assert status == 429 and int(headers["Retry-After"]) > 0


async def test_username_limit_holds_from_any_address_and_a_success_resets_it(make_client, settings):
    client = await make_client(settings, login_max_failures=3)
    await add_user(client)
    p = provider_of(client)
    for address in ("10.0.0.1", "10.0.0.2"):
        assert await check_credentials(p, "alice", "nope nope", address) is None
    assert (await check_credentials(p, "alice", PASSWORD, "10.0.0.3")).username == "alice"  # resets alice
    for address in ("10.0.0.4", "10.0.0.5", "10.0.0.6"):
        assert await check_credentials(p, "alice", "nope nope", address) is None
    try:
        await check_credentials(p, "alice", PASSWORD, "10.0.0.7")
    except SlowDown as exc:
        assert int(exc.headers["Retry-After"]) > 0
    else:
        raise AssertionError("the username limit did not apply from a new address")
    assert (await check_credentials(p, "bob", "whatever1", "10.0.0.8")) is None  # other names unaffected


async def test_an_outdated_hash_is_upgraded_at_login(client):
    app = await add_app(client)
    p = provider_of(client)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    user = await add_user(client)
    stored = await p.store.users.find_user("alice")
    await p.store.users.save_user(stored.__class__(**{**stored.to_json(), "password_hash": weak.hash(PASSWORD)}))
    await login(client, app)
    upgraded = (await p.store.users.find_user("alice")).password_hash
    assert not p.passwords.hasher.check_needs_rehash(upgraded)
    assert upgraded.startswith("$argon2id$")
    assert (await p.store.users.get_user(user["sub"])).password_hash == upgraded
    await login(client, app)  # and the upgraded hash verifies


async def test_a_current_hash_is_left_alone(client):
    app = await add_app(client)
    await add_user(client)
    p = provider_of(client)
    before = (await p.store.users.find_user("alice")).password_hash
    await login(client, app)
    assert (await p.store.users.find_user("alice")).password_hash == before


async def test_a_burst_of_concurrent_attempts_cannot_slip_under_the_limit(make_client, settings, use_pool,
                                                                         tmp_path):
    client = await make_client(settings, login_max_failures=3)
    app = await add_app(client)
    await add_user(client)
    hasher = RecordingHasher(tmp_path / "argon2.log")
    use_pool(client, PasswordPool(2, hasher))
    results = await asyncio.gather(*(
        token(client, app, grant_type="password", username="alice", password="nope nope") for _ in range(8)))
    assert sorted(status for status, _, _ in results) == [400] * 3 + [429] * 5
    assert hasher.verified() == 3  # only the attempts within the limit reached argon2


async def test_a_hash_upgrade_never_writes_back_a_user_changed_meanwhile(client):
    """A login reads the user, spends an argon2 check, then upgrades the hash: a sign-out (or a new
    password) made by an administrator in that time must survive it."""
    p = provider_of(client)
    await add_user(client)
    read_by_login = await p.store.users.find_user("alice")
    signed_out = await revoke_user(p, read_by_login)  # meanwhile: "tokensrv user revoke alice"
    assert not await p.store.users.rehash_password(read_by_login, "$argon2id$upgraded")
    stored = await p.store.users.find_user("alice")
    assert stored == signed_out and stored.not_before_ms > read_by_login.not_before_ms
    assert await p.store.users.rehash_password(stored, "$argon2id$upgraded")  # unchanged since read: stored
    assert (await p.store.users.find_user("alice")).password_hash == "$argon2id$upgraded"


@pytest.mark.parametrize("change", ["passwd", "disable"])
async def test_an_admin_change_during_the_argon2_check_decides_the_login(client, change):
    """The check takes a third of a second: a new password or a disable made meanwhile wins over
    the answer computed for the record read before it."""
    p = provider_of(client)
    await add_user(client)
    real_check = p.passwords.check

    async def check_while_the_admin_acts(stored_hash, password):
        user = await p.store.users.find_user("alice")
        if change == "passwd":
            await revoke_user(p, user, password_hash=await p.passwords.hash("a brand new password"))
        else:
            await revoke_user(p, user, disabled=True)
        return await real_check(stored_hash, password)

    p.passwords.check = check_while_the_admin_acts
    try:
        assert await check_credentials(p, "alice", PASSWORD, "10.0.0.9") is None
    finally:
        p.passwords.check = real_check


async def test_a_login_past_the_queue_bound_is_503_at_once_and_not_counted(make_client, settings, use_pool, redis):
    client = await make_client(settings, login_max_failures=3)
    app = await add_app(client)
    await add_user(client)
    hasher = GatedHasher()
    full = asyncio.Event()
    use_pool(client, PasswordPool(1, hasher, queue=1, on_depth=lambda depth: depth == 2 and full.set()))
    accepted = [asyncio.ensure_future(token(client, app, grant_type="password", username="alice",
                                            password=PASSWORD)) for _ in range(2)]  # 1 hashing, 1 waiting
    await full.wait()  # the second login waits in the pool's queue
    for _ in range(5):  # more than login_max_failures: none of these counts as a failure
        status, body, headers = await token(client, app, grant_type="password", username="alice", password="x")
        assert (status, body["error"], headers["Retry-After"]) == (503, "temporarily_unavailable", "1")
    hasher.open()
    assert [status for status, _, _ in await asyncio.gather(*accepted)] == [200, 200]
    assert await redis.get(keyspace.failures("login:user:alice")) is None  # no failure counted for alice


async def test_a_worker_killed_mid_login_fails_it_closed_and_the_next_login_succeeds(client, use_pool):
    app = await add_app(client)
    await add_user(client)
    hasher = GatedHasher()
    pool = PasswordPool(1, hasher)
    use_pool(client, pool)
    in_flight = asyncio.ensure_future(token(client, app, grant_type="password", username="alice",
                                            password=PASSWORD))
    assert await asyncio.get_running_loop().run_in_executor(None, hasher.started.acquire, True, 30)
    (victim,) = pool.pids()
    os.kill(victim, signal.SIGKILL)  # in the middle of checking the right password
    status, body, _ = await in_flight
    assert (status, body["error"]) == (503, "temporarily_unavailable") and "access_token" not in body
    hasher.open()
    status, body, _ = await token(client, app, grant_type="password", username="alice", password=PASSWORD)
    assert status == 200 and "access_token" in body
    assert victim not in pool.pids()


async def test_an_admin_command_starts_no_argon2_process_until_it_hashes(settings, redis):
    """Most CLI commands never hash: they start no forkserver and no worker (issue 21 item 11: the
    pool started for nothing was what a failing command's exit raced with)."""
    async with admin_provider(settings) as p:
        assert p.passwords.pids() == []
        assert (await p.passwords.hash(PASSWORD)).startswith("$argon2id$")
        assert len(p.passwords.pids()) == 1
