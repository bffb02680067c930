"""store.passkeys on every store topology: several passkeys per user, the credential-id index that
finds the user of a discoverable credential, the signature counter compared and set atomically
(WebAuthn §6.1.1), and challenges taken once."""
from __future__ import annotations

import asyncio

import pytest

from tokensrv.store.passkeys import Challenge, Passkey
from tokensrv.store.redis import RedisStore

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


@pytest.fixture
def store(redis) -> RedisStore:
    return RedisStore(redis)


def key(credential_id: str, created: int = 100) -> Passkey:
    return Passkey(credential_id, "cHVibGlj", "Laptop", created, ("internal",), False)


async def test_passkeys_are_listed_found_by_credential_id_and_removed(store):
    assert await store.passkeys.add_passkey("s1", key("c1", 100)) is True
    assert await store.passkeys.add_passkey("s1", key("c2", 200)) is True
    assert await store.passkeys.add_passkey("s2", key("c1", 300)) is False  # registered already (§7.1 step 26)
    assert await store.passkeys.remove_passkey("s2", "c2") is False  # another user's: its index entry stays
    assert await store.passkeys.owner_of("c2") == ("s1", key("c2", 200))
    assert [k.credential_id for k in await store.passkeys.list_passkeys("s1")] == ["c1", "c2"]
    assert await store.passkeys.owner_of("c2") == ("s1", key("c2", 200))
    assert await store.passkeys.remove_passkey("s1", "c1") is True
    assert await store.passkeys.owner_of("c1") is None and await store.passkeys.remove_passkey("s1", "c1") is False
    assert await store.passkeys.remove_all_passkeys("s1") == 1
    assert await store.passkeys.list_passkeys("s1") == [] and await store.passkeys.owner_of("c2") is None


async def test_the_sign_counter_only_goes_up_and_one_of_two_racing_uses_wins(store):
    await store.passkeys.add_passkey("s1", key("c1"))
    assert await store.passkeys.use_passkey("s1", "c1", 0, 500) == 1  # 0 and 0: an authenticator without a counter
    assert await store.passkeys.use_passkey("s1", "c1", 5, 501) == 1
    wins = await asyncio.gather(*(store.passkeys.use_passkey("s1", "c1", 6, 502) for _ in range(8)))
    assert sorted(wins) == [0] * 7 + [1]
    assert await store.passkeys.use_passkey("s1", "c1", 6, 503) == 0  # not above the stored count
    assert await store.passkeys.use_passkey("s1", "c1", 0, 503) == 0  # a counter back to 0 is a regression too
    (stored,) = await store.passkeys.list_passkeys("s1")
    assert (stored.sign_count, stored.last_used) == (6, 502)
    await store.passkeys.remove_passkey("s1", "c1")
    assert await store.passkeys.use_passkey("s1", "c1", 9, 504) == -1  # removed: nothing recreated
    assert await store.passkeys.list_passkeys("s1") == []


async def test_a_challenge_is_taken_once(store):
    record = Challenge("signin", "browser-digest", "", "request-1")
    await store.passkeys.put_challenge(b"challenge", record, 60)
    taken = await asyncio.gather(*(store.passkeys.take_challenge(b"challenge") for _ in range(8)))
    assert taken.count(record) == 1 and taken.count(None) == 7
