"""The per-user indexes at their bound (store/sessions.py MAX_INDEXED), on every store topology: a
session trimmed from its user's index is ended with it, so that "sign out of all other sessions"
misses nothing still alive; a refresh family trimmed from it stays alive (the page lists the latest;
a service signing one user in thousands of times keeps its tokens)."""
from __future__ import annotations

import pytest

from tests.helpers.store import NOW, family, session
from tokensrv.oauth.own_tokens import refresh_digest
from tokensrv.store.redis import RedisStore
from tokensrv.store.sessions import MAX_INDEXED

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


async def test_a_session_trimmed_from_the_index_is_ended(redis):
    store = RedisStore(redis).sessions
    for n in range(MAX_INDEXED + 3):
        await store.put_session(f"d{n}", session("alice", n, NOW + 60 + n), 3600)
    listed = set(await store.session_digests("alice", NOW))
    for n in range(MAX_INDEXED + 3):
        alive = await store.get_session(f"d{n}") is not None
        assert alive == (f"d{n}" in listed), n  # every live session is listed, the earliest 3 ended
    assert len(listed) == MAX_INDEXED and "d0" not in listed


async def test_a_refresh_family_trimmed_from_the_index_stays_alive(redis):
    store = RedisStore(redis).refresh
    ids = [f"fam{n}" for n in range(MAX_INDEXED + 2)]
    for n, family_id in enumerate(ids):
        await store.create_family(family(family_id, ttl=1000 + n), refresh_digest(f"t{n}"), f"j{n}", NOW + 60, 3600)
    listed = set(await store.user_family_ids("sub1", NOW))
    assert len(listed) == MAX_INDEXED and not {"fam0", "fam1"} & listed  # the latest are listed
    for n, family_id in enumerate(ids):
        assert await store.get_family(family_id, refresh_digest(f"t{n}")) is not None, family_id
