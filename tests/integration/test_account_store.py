"""The account page's indexes in the store (store/sessions.py, store/refresh.py), on every store
topology: a user's sessions and refresh families listed while they live, ended ones forgotten, and
the index bounded however many sign-ins a script makes."""
from __future__ import annotations

import asyncio

import pytest

from tests.helpers.store import NOW, D, family, session
from tokensrv.store import keyspace
from tokensrv.store.redis import RedisStore
from tokensrv.store.sessions import MAX_INDEXED

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


async def test_sessions_are_indexed_per_user_ended_ones_forgotten_and_the_index_bounded(redis):
    store = RedisStore(redis).sessions
    await store.put_session("d-bob", session("bob", 0, NOW + 3600), 3600)
    for n in range(MAX_INDEXED + 5):
        await store.put_session(f"d{n}", session("alice", n, NOW + 60 + n), 3600)
    listed = await store.session_digests("alice", NOW)
    assert len(listed) == MAX_INDEXED and "d0" not in listed and f"d{MAX_INDEXED + 4}" in listed  # the latest kept
    assert await store.session_digests("bob", NOW) == ["d-bob"]
    assert await store.take_session(f"d{MAX_INDEXED + 4}") is not None
    assert f"d{MAX_INDEXED + 4}" not in await store.session_digests("alice", NOW)  # logout forgets it
    assert await store.session_digests("alice", NOW + 10**6) == []  # past their absolute end: not listed
    assert await redis.ttl(keyspace.user_sessions("alice")) > 0  # the index itself expires


async def test_refresh_families_are_indexed_per_user(redis):
    store = RedisStore(redis).refresh
    made = family()
    await store.create_family(made, D[0], "jti", NOW + 60, 3600)
    assert await store.user_family_ids(made.sub, NOW) == [made.family_id]
    await store.unindex_family(made.sub, made.family_id)
    assert await store.user_family_ids(made.sub, NOW) == []


async def test_a_withdrawal_during_a_grant_never_brings_the_scopes_back(redis):
    """grant_consent reads, merges and writes; a withdrawal between its read and its write must
    not be undone (the scopes withdrawn written back). Many concurrent pairs: each ends either
    withdrawn or with the new scope only, never with the withdrawn one."""
    store = RedisStore(redis).consents
    for n in range(40):
        sub = f"user-{n}"
        await store.grant_consent(sub, "app", ["old"], NOW * 1000)
        await asyncio.gather(store.grant_consent(sub, "app", ["new"], NOW * 1000 + 1),
                             store.revoke_consent(sub, "app", NOW * 1000 + 1))
        consent = await store.get_consent(sub, "app")
        assert consent is None or consent.scopes == ("new",), (n, consent)
