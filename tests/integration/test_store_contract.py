"""The store contract, run against RedisStore on the real Valkey: records, uniqueness, atomic
rotation (concurrent rotations: exactly one wins), the compact family layout (and the earlier one, still
read), deny-list TTLs and the revocation feed."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.helpers.store import NOW, D, family, rotate
from tokensrv.oauth.own_tokens import refresh_digest
from tokensrv.store import (
    Client,
    Conflict,
    RefreshFamily,
    Reused,
    Revocation,
    Rotated,
    User,
    keyspace,
)
from tokensrv.store.redis import RedisStore

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


@pytest.fixture
def store(redis) -> RedisStore:
    return RedisStore(redis)


async def test_clients_are_unique_and_removable(store):
    client = Client("svc", "digest", grant_types=("client_credentials",), scopes=("read",))
    await store.clients.add_client(client)
    with pytest.raises(Conflict):
        await store.clients.add_client(Client("svc", None))
    assert await store.clients.get_client("svc") == client
    assert [c.client_id for c in await store.clients.list_clients()] == ["svc"]
    assert await store.clients.remove_client("svc") is True
    assert await store.clients.remove_client("svc") is False
    assert await store.clients.get_client("svc") is None and await store.clients.list_clients() == []


async def test_usernames_are_unique_case_insensitively(store):
    await store.users.add_user(User("s1", "Alice", "hash"))
    with pytest.raises(Conflict):
        await store.users.add_user(User("s2", "aLICE", "hash"))
    assert (await store.users.find_user("ALICE")).sub == "s1"
    await store.users.remove_user(await store.users.get_user("s1"))
    assert await store.users.find_user("alice") is None
    await store.users.add_user(User("s3", "alice", "hash"))  # the name is free again
    assert [u.sub for u in await store.users.list_users()] == ["s3"]


async def test_concurrent_usernames_one_wins(store):
    results = await asyncio.gather(*(store.users.add_user(User(f"s{i}", "Bob", "h")) for i in range(10)),
                                   return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if r is not None)


async def test_family_key_expires_at_the_idle_end_and_never_past_the_absolute_end(store, redis):
    await store.refresh.create_family(family(ttl=1000), D[0], "j0", NOW + 900, idle_ttl=300)
    assert await redis.expiretime(keyspace.family("fam1")) == NOW + 300
    outcome = await rotate(store, "fam1", D[0], D[1], "app", NOW + 200, "j1", NOW + 1100, 300, 0)
    assert isinstance(outcome, Rotated) and outcome.family.live_until(1000) == NOW + 300  # as it was read
    assert await redis.expiretime(keyspace.family("fam1")) == NOW + 500
    await rotate(store, "fam1", D[1], D[2], "app", NOW + 450, "j2", NOW + 1350, 300, 0)
    await rotate(store, "fam1", D[2], D[3], "app", NOW + 720, "j3", NOW + 1620, 300, 0)
    assert await redis.expiretime(keyspace.family("fam1")) == NOW + 1000  # not 720 + 300
    found, is_live = await store.refresh.get_family("fam1", D[3])
    assert is_live and found.live_until(1000) == NOW + 1000
    assert found.live_until(800) == NOW + 800  # REFRESH_FAMILY_TTL lowered since: the lower one rules


async def test_rotation_refuses_an_expired_family_by_the_callers_clock(store, redis):
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    assert await rotate(store, "fam1", D[0], D[1], "app", NOW + 300, "j1", NOW + 1200, 300, 0) == "unknown"
    assert not await redis.exists(keyspace.family("fam1"))


async def test_rotation_of_another_clients_family_changes_nothing(store):
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    assert await rotate(store, "fam1", D[0], D[1], "other", NOW, "j1", NOW + 900, 300, 0) == "wrong_client"
    assert (await store.refresh.get_family("fam1", D[0]))[1] is True
    assert await rotate(store, "nope", D[0], D[1], "app", NOW, "j1", NOW + 900, 300, 0) == "unknown"


async def test_a_refused_rotation_writes_nothing_and_the_token_still_rotates(store, redis):
    """Each refusal a request can cause answers from the one script before it writes: another
    client, a scope the family was not granted, a family dead by today's REFRESH_FAMILY_TTL (kept:
    the setting may be raised again). Then the same token rotates, and narrowing the scope is fine."""
    sub = "0123456789abcdef0123456789abcdef"  # as `user add` makes them: stored packed, unpacked by the script
    await store.users.add_user(User(sub, "alice", "hash"))
    await store.refresh.create_family(dataclasses.replace(family(sub=sub), scope="read write"),
                                      D[0], "j0", NOW + 900, 300)
    before = (await store.refresh.get_family("fam1", D[0]), await redis.expiretime(keyspace.family("fam1")))
    refusals = [("other", NOW + 10, {}, "wrong_client"),
                ("app", NOW + 10, {"scope": ["read", "admin"]}, "invalid_scope"),
                ("app", NOW + 10, {"scope": ["admin"]}, "invalid_scope"),
                ("app", NOW + 100, {"max_life": 100}, "unknown")]
    for client_id, now, checks, refused in refusals:
        answer = await store.refresh.rotate_with_user("fam1", D[0], D[1], client_id, now, "j1", now + 900, 300, 0,
                                                      **checks)
        assert answer == (refused, None, False), (client_id, checks)
        assert (await store.refresh.get_family("fam1", D[0]), await redis.expiretime(keyspace.family("fam1"))) == before
    outcome, user, ended = await store.refresh.rotate_with_user("fam1", D[0], D[1], "app", NOW + 10, "j1",
                                                                NOW + 910, 300, 0, scope=["write"], max_life=1000)
    assert isinstance(outcome, Rotated) and outcome.replaced == () and user.username == "alice" and not ended
    assert (await store.refresh.get_family("fam1", D[1]))[1] is True
    assert await store.refresh.revoke_family("fam1", NOW + 10) == (("j0", NOW + 900), ("j1", NOW + 910))

async def test_concurrent_rotations_exactly_one_wins(store, redis):
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    outcomes = await asyncio.gather(*(
        rotate(store, "fam1", D[0], refresh_digest(f"new{i}"), "app", NOW, f"j{i + 1}", NOW + 900, 300, 0)
        for i in range(20)))
    assert sum(isinstance(o, Rotated) for o in outcomes) == 1
    reused = [o for o in outcomes if isinstance(o, Reused)]
    assert len(reused) == 1 and outcomes.count("unknown") == 18  # the first loser killed it
    assert {j for j, _ in reused[0].outstanding} == {"j0", next(
        f"j{i + 1}" for i, o in enumerate(outcomes) if isinstance(o, Rotated))}
    assert not await redis.exists(keyspace.family("fam1"))


async def test_an_unused_successors_predecessor_rotates_again_each_time_it_comes(store):
    """A retry after a lost answer (issue #21 item 3): while the successor was never presented, its
    predecessor gets a fresh pair as often as it comes within the window; each time the unused pair
    is replaced (its access token to be revoked) and the predecessor stays the same."""
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    await rotate(store, "fam1", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 30)
    previous = ("j1", NOW + 910)
    for i, at in ((2, NOW + 20), (3, NOW + 40)):  # the window counts from the first rotation: 40 - 10 <= 30
        again = await rotate(store, "fam1", D[0], D[i], "app", at, f"j{i}", at + 900, 300, 30)
        assert isinstance(again, Rotated) and again.replaced == (previous,)
        previous = (f"j{i}", at + 900)
        assert (await store.refresh.get_family("fam1", D[i]))[1] is True
    assert isinstance(await rotate(store, "fam1", D[3], D[4], "app", NOW + 41, "j4", NOW + 941, 300, 30), Rotated)
    assert await store.refresh.revoke_family("fam1", NOW + 41) == (
        ("j0", NOW + 900), ("j3", NOW + 940), ("j4", NOW + 941))


async def test_a_predecessor_after_its_successor_was_used_is_reuse(store):
    """RFC 9700 §4.14.2: once the successor has been presented, any older token kills the family,
    the window notwithstanding; so do the replaced unused successors."""
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    await rotate(store, "fam1", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 30)
    await rotate(store, "fam1", D[1], D[2], "app", NOW + 11, "j2", NOW + 911, 300, 30)
    reused = await rotate(store, "fam1", D[0], D[3], "app", NOW + 12, "j3", NOW + 912, 300, 30)
    assert isinstance(reused, Reused) and {j for j, _ in reused.outstanding} == {"j0", "j1", "j2"}
    await store.refresh.create_family(family("fam2"), D[0], "j0", NOW + 900, idle_ttl=300)
    await rotate(store, "fam2", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 30)
    await rotate(store, "fam2", D[0], D[2], "app", NOW + 11, "j2", NOW + 911, 300, 30)  # D[1] replaced, unused
    assert isinstance(await rotate(store, "fam2", D[1], D[3], "app", NOW + 12, "j3", NOW + 912, 300, 30), Reused)


async def test_past_the_window_or_without_one_the_predecessor_is_reuse(store):
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    await rotate(store, "fam1", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 30)
    assert isinstance(await rotate(store, "fam1", D[0], D[2], "app", NOW + 41, "j2", NOW + 941, 300, 30), Reused)
    await store.refresh.create_family(family("fam2"), D[0], "j0", NOW + 900, idle_ttl=300)
    await rotate(store, "fam2", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 0)
    assert isinstance(await rotate(store, "fam2", D[0], D[2], "app", NOW + 11, "j2", NOW + 911, 300, 0), Reused)


async def test_a_retry_of_a_dpop_bound_family_needs_its_key(store):
    """RFC 9449 §5: the predecessor's retry is checked like any use: without the family's key it
    is refused before anything changes (the unused successor stays live)."""
    await store.refresh.create_family(dataclasses.replace(family(), jkt="K"), D[0], "j0", NOW + 900, idle_ttl=300)
    outcome, _, _ = await store.refresh.rotate_with_user("fam1", D[0], D[1], "app", NOW, "j1", NOW + 900, 300, 60,
                                                         jkt="K")
    assert isinstance(outcome, Rotated)
    for jkt in ("", "other"):
        refused = await store.refresh.rotate_with_user("fam1", D[0], D[2], "app", NOW, "j2", NOW + 900, 300, 60,
                                                       jkt=jkt)
        assert refused == ("wrong_key", None, False)
    assert (await store.refresh.get_family("fam1", D[1]))[1] is True
    outcome, _, _ = await store.refresh.rotate_with_user("fam1", D[0], D[2], "app", NOW, "j2", NOW + 900, 300, 60,
                                                         jkt="K")
    assert isinstance(outcome, Rotated) and outcome.replaced == (("j1", NOW + 900),)


async def test_concurrent_uses_within_the_window_leave_exactly_one_live_pair(store, redis):
    """Every one of N concurrent uses of the live token is answered (each later one is a retry of
    the first), but only the last pair lives: the others' access tokens are handed back to be
    revoked, and presenting any of their refresh tokens is reuse."""
    await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=300)
    news = [refresh_digest(f"new{i}") for i in range(20)]
    outcomes = await asyncio.gather(*(
        rotate(store, "fam1", D[0], news[i], "app", NOW, f"j{i + 1}", NOW + 900, 300, 60) for i in range(20)))
    assert all(isinstance(o, Rotated) for o in outcomes)
    live = [d for d in news if (await store.refresh.get_family("fam1", d))[1]]
    assert len(live) == 1
    replaced = {j for o in outcomes for j, _ in o.replaced}
    survivor = f"j{news.index(live[0]) + 1}"
    assert replaced == {f"j{i + 1}" for i in range(20)} - {survivor}
    dead = next(d for d in news if d != live[0])
    assert isinstance(await rotate(store, "fam1", dead, D[1], "app", NOW, "jx", NOW + 900, 300, 60), Reused)
    assert not await redis.exists(keyspace.family("fam1"))


async def test_outstanding_access_tokens_forget_the_expired_ones(store):
    await store.refresh.create_family(family(), D[0], "j0", NOW + 100, idle_ttl=300)
    await rotate(store, "fam1", D[0], D[1], "app", NOW + 150, "j1", NOW + 250, 300, 0)
    assert await store.refresh.revoke_family("fam1", NOW + 150) == (("j1", NOW + 250),)
    assert await store.refresh.revoke_family("fam1", NOW + 150) == ()


async def test_a_family_is_one_small_list_holding_no_defaults(store, redis):
    """The layout the memory figure depends on: a listpack of values, the sub packed, the digest
    raw, access-token exps relative to the creation, the predecessor only for a grace window."""
    sub = "0123456789abcdef" * 2
    await store.refresh.create_family(family(sub=sub, sid="s1"), D[0], "j0", NOW + 900, idle_ttl=300)
    record = await redis.lrange(keyspace.family("fam1"), 1, -1)  # the raw digest first: not UTF-8
    assert record == ["j0+900", "app", "ASNFZ4mrze8BI0VniavN7w", "read", "s1", str(NOW * 1000), str(NOW + 1000), "0"]
    assert await redis.object("encoding", keyspace.family("fam1")) == "listpack"
    assert (await store.refresh.get_family("fam1"))[0].sub == sub
    await rotate(store, "fam1", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 0)
    assert await redis.lrange(keyspace.family("fam1"), 1, 1) == ["j0+900;j1+910"]
    assert await redis.llen(keyspace.family("fam1")) == 9  # no grace window: no predecessor kept
    await rotate(store, "fam1", D[1], D[2], "app", NOW + 20, "j2", NOW + 920, 300, 30)
    assert await redis.llen(keyspace.family("fam1")) == 11
    assert await redis.lrange(keyspace.family("fam1"), 10, 10) == [str(NOW + 20)]
    await rotate(store, "fam1", D[1], D[3], "app", NOW + 25, "j3", NOW + 925, 300, 30)  # a retry: kept
    assert await redis.llen(keyspace.family("fam1")) == 11
    assert await redis.lrange(keyspace.family("fam1"), 10, 10) == [str(NOW + 20)]  # since the first rotation
    await rotate(store, "fam1", D[3], D[4], "app", NOW + 30, "j4", NOW + 930, 300, 0)  # no window: none kept
    assert await redis.llen(keyspace.family("fam1")) == 9
    assert await redis.object("encoding", keyspace.family("fam1")) == "listpack"


@pytest.mark.parametrize("sub", ["0123456789abcdef" * 2, "0123456789ABCDEF" * 2, "u1", "=odd;sub+ é", ""])
async def test_any_sub_comes_back_as_it_was(store, sub):
    await store.refresh.create_family(family(sub=sub), D[0], "j0", NOW + 900, idle_ttl=300)
    assert (await store.refresh.get_family("fam1"))[0].sub == sub
    outcome = await rotate(store, "fam1", D[0], D[1], "app", NOW, "j1", NOW + 900, 300, 0)
    assert outcome.family.sub == sub


async def test_the_family_record_comes_back_whole(store):
    created = family(sid="s1")
    created = RefreshFamily(created.family_id, created.client_id, created.sub, "read write", NOW * 1000 + 123,
                            NOW + 1000, sid="s1", auth_time=NOW - 40)
    await store.refresh.create_family(created, D[0], "j0", NOW + 900, idle_ttl=300)
    found, is_live = await store.refresh.get_family("fam1", D[0])
    assert found == RefreshFamily("fam1", "app", "sub1", "read write", NOW * 1000 + 123, NOW + 1000, sid="s1",
                                  auth_time=NOW - 40, idle_expires_at=NOW + 300) and is_live
    assert (await store.refresh.get_family("fam1", D[1]))[1] is False
    assert (await store.refresh.get_family("fam1"))[1] is False
    assert await store.refresh.get_family("nope", D[0]) is None


async def old_layout_family(redis, *, rotated: bool = False, grace_used: bool = False) -> None:
    """A family as the earlier layout wrote it: a hash, text digests, ia/hj/pg, absolute exps."""
    fields = {"c": "app", "s": "sub1", "sc": "read", "si": "s1", "at": NOW - 5, "ca": NOW * 1000,
              "ea": NOW + 1000, "ia": NOW + 300, "h": D[0], "hj": "j0", "pg": "0", "j": f"j0 {NOW + 900}"}
    if rotated:
        fields.update(h=D[1], hj="j1", p=D[0], pt=NOW + 10, pg="1" if grace_used else "0",
                      j=f"j0 {NOW + 900};j1 {NOW + 910}")
    await redis.hset(keyspace.family("fam1"), mapping=fields)
    await redis.expireat(keyspace.family("fam1"), NOW + 300)


async def test_a_family_of_the_earlier_layout_reads_and_rotates(store, redis):
    await old_layout_family(redis)
    found, is_live = await store.refresh.get_family("fam1", D[0])
    assert is_live and found == RefreshFamily("fam1", "app", "sub1", "read", NOW * 1000, NOW + 1000, sid="s1",
                                              auth_time=NOW - 5, idle_expires_at=NOW + 300)
    assert await redis.type(keyspace.family("fam1")) == "list"  # rewritten in the compact layout
    assert await redis.expiretime(keyspace.family("fam1")) == NOW + 300
    outcome = await rotate(store, "fam1", D[0], D[1], "app", NOW + 10, "j1", NOW + 910, 300, 0)
    assert isinstance(outcome, Rotated) and outcome.family == found
    reused = await rotate(store, "fam1", D[0], D[2], "app", NOW + 20, "j2", NOW + 920, 300, 0)
    assert isinstance(reused, Reused) and reused.outstanding == (("j0", NOW + 900), ("j1", NOW + 910))


async def test_the_earlier_layouts_grace_window_carries_over(store, redis):
    await old_layout_family(redis, rotated=True)
    again = await rotate(store, "fam1", D[0], D[2], "app", NOW + 15, "j2", NOW + 915, 300, 30)
    assert isinstance(again, Rotated) and again.replaced == (("j1", NOW + 910),)
    await redis.delete(keyspace.family("fam1"))
    await old_layout_family(redis, rotated=True, grace_used=True)
    assert isinstance(await rotate(store, "fam1", D[0], D[2], "app", NOW + 15, "j2", NOW + 915, 300, 30), Reused)


async def test_revoking_a_family_of_the_earlier_layout_lists_its_access_tokens(store, redis):
    await old_layout_family(redis, rotated=True)
    assert await store.refresh.revoke_family("fam1", NOW + 905) == (("j1", NOW + 910),)
    assert not await redis.exists(keyspace.family("fam1"))


async def test_families_are_not_indexed_by_session_and_by_user_only_for_the_account_page(store, redis):
    """Sign-out and logout are enforced where a family is used: a family is one key, and the user's
    index (user-rf:<sub>) only lists it on the account page."""
    await store.refresh.create_family(family("f1", "u1", sid="s1"), D[0], "j1", NOW + 900, 300)
    assert sorted(await redis.keys(keyspace.PREFIX + "*")) == [keyspace.family("f1"), keyspace.user_families("u1")]


async def test_an_ended_session_is_marked_with_its_sid_deny_entry_in_one_transaction(store, redis):
    await store.denylist.revoke([Revocation("sid", "s1", NOW + 900, NOW)], NOW, ended_until=NOW + 30 * 86400)
    assert await redis.expiretime(keyspace.deny("sid", "s1")) == NOW + 900
    assert await redis.expiretime(keyspace.ended("s1")) == NOW + 30 * 86400
    assert await store.refresh.session_ended("s1") and not await store.refresh.session_ended("s2")
    assert not await store.refresh.session_ended("")
    entries = [fields for _, fields in await redis.xrange(keyspace.FEED)]
    assert entries == [{"k": "sid", "v": "s1", "u": str(NOW + 900), "t": str(NOW)}]  # the feed keeps its TTL
    await store.denylist.revoke([Revocation("sid", "s2", NOW + 900, NOW)], NOW)  # without ended_until: no mark
    assert not await store.refresh.session_ended("s2")


async def test_deny_list_entries_carry_their_ttl_and_reach_the_feed(store, redis):
    await store.denylist.revoke([Revocation("jti", "j1", NOW + 60, NOW), Revocation("sid", "s1", NOW + 900, NOW),
                        Revocation("sub", "u1", NOW + 900, NOW), Revocation("family", "f1", NOW + 60, NOW)], NOW)
    assert await redis.expiretime(keyspace.deny("jti", "j1")) == NOW + 60
    assert await redis.expiretime(keyspace.deny("sid", "s1")) == NOW + 900
    assert await redis.expiretime(keyspace.deny("sub", "u1")) == NOW + 900
    assert await store.denylist.denied("j1", "s1", "u1") == (True, True, NOW)
    assert await store.denylist.denied("j2", "", "u2") == (False, False, 0)
    entries = [fields for _, fields in await redis.xrange(keyspace.FEED)]
    assert entries == [
        {"k": "jti", "v": "j1", "u": str(NOW + 60), "t": str(NOW)},
        {"k": "sid", "v": "s1", "u": str(NOW + 900), "t": str(NOW)},
        {"k": "sub", "v": "u1", "u": str(NOW + 900), "t": str(NOW)},
        {"k": "family", "v": "f1", "u": str(NOW + 60), "t": str(NOW)},
    ]
    assert await redis.keys(keyspace.deny("family", "*")) == []  # feed only: nothing checks it


async def test_feed_is_trimmed_by_its_own_clock_not_the_callers(store, redis):
    """A caller whose clock is far ahead of Valkey's must not trim the entries it just wrote."""
    far_future = NOW + 10 * 365 * 86400
    for i in range(300):
        await store.denylist.revoke([Revocation("jti", f"j{i}", far_future + 60, far_future)], far_future)
    assert await redis.xlen(keyspace.FEED) == 300


async def test_attempt_counters_keep_their_first_window(store, redis):
    assert await store.limits.count_attempt(["login:user:a", "login:addr:x"], 600) == [(1, 600), (1, 600)]
    await redis.expire(keyspace.failures("login:user:a"), 100)  # as if 500 s had passed
    assert (await store.limits.count_attempt(["login:user:a"], 600))[0] == (2, 100)  # not extended
    await store.limits.forgive_attempt(["login:user:a", "login:addr:gone"])
    assert await redis.get(keyspace.failures("login:user:a")) == "1"
    assert not await redis.exists(keyspace.failures("login:addr:gone"))  # never made without a window
    await store.limits.clear_failures(["login:user:a"])
    assert not await redis.exists(keyspace.failures("login:user:a"))


async def test_a_totp_step_and_a_recovery_code_are_used_once_even_concurrently(store):
    await store.mfa.put_setup("s1", "SECRET", 60)
    assert await store.mfa.get_setup("s1") == "SECRET"
    await store.mfa.enrol("s1", "SECRET", 100, ["d1", "d2"], NOW)
    assert await store.mfa.get_setup("s1") is None  # confirmed: the waiting secret is gone
    factor = await store.mfa.get_second_factor("s1")
    assert (factor.secret, factor.last_step, factor.recovery_left) == ("SECRET", 100, 2)
    assert await store.mfa.use_step("s1", 100) is False  # the confirming code's step counts as used
    wins = await asyncio.gather(*(store.mfa.use_step("s1", 101) for _ in range(8)))
    assert wins.count(True) == 1
    assert await store.mfa.use_step("s1", 100) is False  # an older step after a newer one: refused
    spent = await asyncio.gather(*(store.mfa.use_recovery_code("s1", "d1") for _ in range(8)))
    assert spent.count(True) == 1 and await store.mfa.use_recovery_code("s1", "nope") is False
    assert (await store.mfa.get_second_factor("s1")).recovery_left == 1
    assert await store.mfa.remove_second_factor("s1") is True
    assert await store.mfa.get_second_factor("s1") is None and await store.mfa.use_step("s1", 102) is False
