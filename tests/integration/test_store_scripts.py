"""The store's Lua scripts (tokensrv/store/lua/*.lua), on the real Valkey: every file is a script the
store registers or a fragment a script names, every script compiles, and the scripts no other store
test calls directly each have their own test here (the refresh family's are in test_store_contract,
the device grant's in test_device_grant, the revocation's in test_revocation)."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from importlib import resources

import pytest

from tokensrv.store import AuthCode, AuthorizationRequest, CodeReplay, scripts
from tokensrv.store.backchannel import LogoutJob
from tokensrv.store.redis import RedisStore

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

LUA_FILES = sorted(p.name[:-4] for p in (resources.files("tokensrv.store") / "lua").iterdir()
                   if p.name.endswith(".lua"))
STORE_MODULES = "\n".join(p.read_text(encoding="utf-8") for p in resources.files("tokensrv.store").iterdir()
                          if p.name.endswith(".py") and p.name != "scripts.py")  # one module per domain


@pytest.fixture
def store(redis) -> RedisStore:
    return RedisStore(redis)


@pytest.mark.parametrize("name", LUA_FILES)
async def test_every_lua_file_is_loaded_and_registered(name, redis):
    if name in scripts.FRAGMENTS:  # composed into the scripts that name it
        assert any(scripts._read(name) in source for source in scripts.SOURCES.values())
        return
    source = scripts.SOURCES[name]  # composed at import, the file last
    assert source.endswith(scripts._read(name) + "\n")
    constant = next(c for c, v in vars(scripts).items() if v is source and c.isupper())
    assert re.search(rf"\bscripts\.{constant}\b", STORE_MODULES), f"no store module uses {constant}"
    loaded = await redis.script_load(source)
    assert loaded == hashlib.sha1(source.encode()).hexdigest()  # Valkey compiled it


async def test_release_lock_frees_only_the_holders_lock(store):
    async with store.locks.lock("job", 60) as held:
        assert held
        async with store.locks.lock("job", 60) as second:
            assert not second  # and leaving it must not free the holder's lock
        async with store.locks.lock("job", 60) as third:
            assert not third
    async with store.locks.lock("job", 60) as again:
        assert again


async def test_a_token_bucket_allows_its_burst_then_refills_at_its_rate(store):
    now = 1_800_000_000_000
    assert [await store.limits.take_token("client:a", 2.0, 3, now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await store.limits.take_token("client:a", 2.0, 3, now) == 0.5  # one token every 500 ms
    assert await store.limits.take_token("client:a", 2.0, 3, now + 500) == 0.0
    assert await store.limits.take_token("client:b", 2.0, 3, now) == 0.0  # one bucket per key


async def test_a_code_is_taken_once_and_a_replay_names_what_it_issued(store):
    request = AuthorizationRequest("app", "https://app.example/cb", False, "openid")
    code = AuthCode(request, "alice", "sid-1", 1_800_000_000, 1_800_000_000_000, 1_800_000_060)
    await store.sessions.put_code("d1", code, 60)
    assert await store.sessions.take_code("d1", 600) == code
    assert await store.sessions.record_code_tokens("d1", "fam-1", "jti-1", 1_800_000_300)
    assert await store.sessions.take_code("d1", 600) == CodeReplay("fam-1", "jti-1", 1_800_000_300)
    assert not await store.sessions.record_code_tokens("d1", None, "jti-2", 1_800_000_300)  # replayed: not issued
    assert await store.sessions.take_code("unknown", 600) is None


async def test_a_replay_before_the_tokens_are_recorded_refuses_the_recording(store):
    request = AuthorizationRequest("app", "https://app.example/cb", False, "openid")
    await store.sessions.put_code("d2", AuthCode(request, "alice", "", 0, 0, 1_800_000_060), 60)
    assert isinstance(await store.sessions.take_code("d2", 600), AuthCode)
    assert await store.sessions.take_code("d2", 600) == CodeReplay(None, None, 0)
    assert not await store.sessions.record_code_tokens("d2", "fam-2", "jti-3", 1_800_000_300)


async def test_an_initial_access_token_is_used_as_often_as_it_allows(store):
    await store.clients.put_initial_token("iat", 2, 60)
    assert [await store.clients.use_initial_token("iat") for _ in range(3)] == [True, True, False]
    assert await store.clients.initial_token_uses("iat") == 0
    assert not await store.clients.use_initial_token("never-issued")


async def test_session_clients_are_recorded_and_taken_per_session(store):
    now = 1_800_000_000
    await store.logouts.record_session_client("alice", "s1", "rp1", now + 60, now)
    await store.logouts.record_session_client("alice", "s2", "rp2", now + 60, now)
    await store.logouts.record_session_client("alice", "s3", "rp3", now + 1, now)
    assert await store.logouts.take_session_clients("alice", ["s1"], now) == [("s1", "rp1")]
    assert sorted(await store.logouts.take_session_clients("alice", [], now + 10)) == [("s2", "rp2")]  # s3 ended
    assert await store.logouts.take_session_clients("alice", [], now) == []


async def test_the_logout_queue_is_bounded_and_retries_come_back_when_due(store):
    jobs = [LogoutJob("rp", "alice", f"s{i}") for i in range(3)]
    assert await store.logouts.enqueue_logouts(jobs, 2) == 2  # the bound refuses the third
    taken = await store.logouts.read_logouts("c1", 10, None)
    assert [q.job for q in taken] == jobs[:2]
    await store.logouts.finish_logout(taken[0].entry_id)
    await store.logouts.finish_logout(taken[1].entry_id, dataclasses.replace(jobs[1], attempt=1), due_ms=5_000)
    assert await store.logouts.logout_queue_length() == 1  # the retry counts against the bound
    assert await store.logouts.promote_due_logouts(4_999) == 0
    assert await store.logouts.promote_due_logouts(5_000) == 1
    read = await store.logouts.read_logouts("c1", 10, None)
    assert [q.job for q in read] == [dataclasses.replace(jobs[1], attempt=1)]
