"""The refresh_token grant: rotation on every use, reuse detection, the grace window, idle and
absolute lifetimes (injected clock + the family key's expiry in Valkey), client binding, scopes."""
from __future__ import annotations

import asyncio

import pytest

from tests.helpers.app import provider_of
from tests.helpers.metrics import scrape
from tests.helpers.oauth import (
    add_app,
    add_client,
    add_user,
    claims_of,
    introspect,
    login,
    refresh,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.grants import refresh_token
from tokensrv.oauth.own_tokens import parse_refresh_token
from tokensrv.store import keyspace

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


def family_key(refresh_token: str) -> str:
    return keyspace.family(parse_refresh_token(refresh_token))


async def setup(client, **app_kw):
    app = await add_app(client, **app_kw)
    await add_user(client)
    rs = await add_client(client, "rs")  # a resource server that introspects
    return app, rs


async def test_refresh_rotates_and_the_new_token_works(client, clock):
    app, _ = await setup(client)
    first = await login(client, app)
    clock.advance(10)
    status, second, headers = await refresh(client, app, first["refresh_token"])
    assert status == 200, second
    assert headers["Cache-Control"] == "no-store"
    assert second["refresh_token"] != first["refresh_token"]
    assert parse_refresh_token(second["refresh_token"]) == parse_refresh_token(first["refresh_token"])
    old, new = claims_of(first["access_token"]), claims_of(second["access_token"])
    assert new["sub"] == old["sub"] and new["sid"] == old["sid"] and new["auth_time"] == old["auth_time"]
    assert new["iat"] == old["iat"] + 10 and new["jti"] != old["jti"]
    status, third, _ = await refresh(client, app, second["refresh_token"])
    assert status == 200, third


async def test_reused_refresh_token_kills_the_family_and_its_access_tokens(client, redis, clock, settings):
    """RFC 9700 §4.14.2: a token presented after its successor was used (whatever the window)."""
    app, rs = await setup(client)
    first = await login(client, app)
    status, second = (await refresh(client, app, first["refresh_token"]))[:2]
    assert status == 200
    status, third = (await refresh(client, app, second["refresh_token"]))[:2]  # the successor, used
    assert status == 200
    status, body, _ = await refresh(client, app, first["refresh_token"])  # the replay
    assert (status, body["error"]) == (400, "invalid_grant")
    # the whole family is dead: even the newest refresh token
    status, body, _ = await refresh(client, app, third["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert not await redis.exists(family_key(first["refresh_token"]))
    for issued in (first, second, third):
        assert (await introspect(client, rs, issued["access_token"]))["active"] is False
        assert (await introspect(client, app, issued["refresh_token"]))["active"] is False
        claims = claims_of(issued["access_token"])
        denied_key = keyspace.deny("jti", claims["jti"])
        assert await redis.expiretime(denied_key) == claims["exp"]  # a TTL: until the token expires
    feed = [fields for _, fields in await redis.xrange(keyspace.FEED)]
    assert {"k": "family", "v": parse_refresh_token(first["refresh_token"]),
            "u": str(int(clock()) + settings.access_token_ttl), "t": str(int(clock()))} in feed
    denied_jtis = {f["v"] for f in feed if f["k"] == "jti"}
    assert {claims_of(t["access_token"])["jti"] for t in (first, second, third)} <= denied_jtis


async def test_made_up_token_naming_a_live_family_counts_as_reuse(client):
    """Any token of a live family that is not the current one is reuse (known design choice)."""
    app, _ = await setup(client)
    first = await login(client, app)
    forged = first["refresh_token"][:22] + "A" * 42
    assert parse_refresh_token(forged) is not None
    assert (await refresh(client, app, forged))[0] == 400
    assert (await refresh(client, app, first["refresh_token"]))[0] == 400


async def test_without_a_window_of_n_concurrent_refreshes_exactly_one_succeeds(make_client, settings):
    client = await make_client(settings, refresh_reuse_grace=0)  # strict: any rotated token is reuse
    app, rs = await setup(client)
    first = await login(client, app)
    results = await asyncio.gather(*(refresh(client, app, first["refresh_token"]) for _ in range(12)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [400] * 11
    assert all(body["error"] == "invalid_grant" for status, body, _ in results if status == 400)
    # the others were reuse: the family is dead, the winner's tokens with it
    winner = next(body for status, body, _ in results if status == 200)
    assert (await refresh(client, app, winner["refresh_token"]))[0] == 400
    assert (await introspect(client, rs, winner["access_token"]))["active"] is False


async def test_a_refresh_is_one_store_round_trip_on_one_server(client, topology):
    """The grant's store commands, counted by the app's own metric (one per round trip). On one
    server (and Sentinel's primary) the rotation script also reads the user and the session's end;
    on Cluster those are two other slots, read from their nodes at once after the script."""
    app, _ = await setup(client)
    warm = (await refresh(client, app, (await login(client, app))["refresh_token"]))[1]  # the script loaded
    p = provider_of(client)
    registered = await p.store.clients.get_client(app.client_id)
    before, _ = await scrape(client)
    answer = await refresh_token.grant(p, registered, {"grant_type": "refresh_token",
                                                       "refresh_token": warm["refresh_token"]})
    after, _ = await scrape(client)
    assert answer.response["refresh_token"] != warm["refresh_token"]
    count = "tokensrv_store_command_duration_seconds_count"
    sent = {dict(labels)["command"]: n - before.get((name, labels), 0)
            for (name, labels), n in after.items() if name == count and n != before.get((name, labels), 0)}
    # RedisCluster sends EXISTS (a multi-key command to it) as a pipeline of one, to the key's node
    assert sent == ({"evalsha": 1, "get": 1, "pipeline": 1} if topology == "cluster" else {"evalsha": 1})

# ---- the retry window (REFRESH_REUSE_GRACE, 60 s by default) ----

async def test_a_retry_after_a_lost_answer_gets_a_fresh_pair_by_default(client, clock):
    """Issue #21 item 3: the client never saw the answer (a 503 after the store ran the rotation):
    its retry of the same token, its successor unused, is answered, and the unused pair dies."""
    app, rs = await setup(client)
    first = await login(client, app)
    lost = (await refresh(client, app, first["refresh_token"]))[1]  # the answer the client never saw
    clock.advance(5)
    status, retry, _ = await refresh(client, app, first["refresh_token"])
    assert status == 200, retry
    assert (await introspect(client, rs, lost["access_token"]))["active"] is False
    assert (await introspect(client, app, lost["refresh_token"]))["active"] is False
    assert (await introspect(client, rs, retry["access_token"]))["active"] is True
    status, after, _ = await refresh(client, app, retry["refresh_token"])
    assert status == 200, after


async def test_retries_are_answered_as_often_as_they_come_until_the_successor_is_used(client):
    app, rs = await setup(client)
    first = await login(client, app)
    answers = [(await refresh(client, app, first["refresh_token"]))[1] for _ in range(4)]
    assert all("refresh_token" in a for a in answers)
    assert [(await introspect(client, rs, a["access_token"]))["active"] for a in answers] == [False] * 3 + [True]
    assert (await refresh(client, app, answers[-1]["refresh_token"]))[0] == 200  # used: the first is spent
    status, body, _ = await refresh(client, app, first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_after_the_window_the_predecessor_is_reuse(make_client, settings, clock):
    client = await make_client(settings, refresh_reuse_grace=30)
    app, _ = await setup(client)
    first = await login(client, app)
    second = (await refresh(client, app, first["refresh_token"]))[1]
    clock.advance(31)
    assert (await refresh(client, app, first["refresh_token"]))[0] == 400
    assert (await refresh(client, app, second["refresh_token"]))[0] == 400


async def test_the_window_covers_only_the_immediate_predecessor(client):
    app, _ = await setup(client)
    first = await login(client, app)
    second = (await refresh(client, app, first["refresh_token"]))[1]
    third = (await refresh(client, app, second["refresh_token"]))[1]
    assert (await refresh(client, app, first["refresh_token"]))[0] == 400
    assert (await refresh(client, app, third["refresh_token"]))[0] == 400


async def test_concurrent_refreshes_all_succeed_and_one_pair_survives(client):
    """Each later one is taken for a retry of the first: exactly one pair lives; the family forks
    never, and presenting a replaced refresh token is reuse."""
    app, rs = await setup(client)
    first = await login(client, app)
    results = await asyncio.gather(*(refresh(client, app, first["refresh_token"]) for _ in range(6)))
    assert [status for status, _, _ in results] == [200] * 6
    active = [(await introspect(client, rs, body["access_token"]))["active"] for _, body, _ in results]
    live = [(await introspect(client, app, body["refresh_token"]))["active"] for _, body, _ in results]
    assert sorted(active) == [False] * 5 + [True] and active == live  # the surviving pair belongs together
    replaced = next(body for (_, body, _), alive in zip(results, live, strict=True) if not alive)
    assert (await refresh(client, app, replaced["refresh_token"]))[0] == 400


# ---- lifetimes: the injected clock decides, and the family key expires in Valkey at the same time ----

async def test_idle_lifetime_is_renewed_by_each_use(make_client, settings, clock, redis):
    client = await make_client(settings, refresh_token_ttl=100, refresh_family_ttl=1000)
    app, _rs = await setup(client)
    token = (await login(client, app))["refresh_token"]
    key = family_key(token)
    assert await redis.expiretime(key) == int(clock()) + 100
    clock.advance(99)
    status, body, _ = await refresh(client, app, token)
    assert status == 200
    assert await redis.expiretime(key) == int(clock()) + 100
    token = body["refresh_token"]
    clock.advance(100)  # idle for the whole TTL
    assert (await introspect(client, app, token))["active"] is False
    status, body, _ = await refresh(client, app, token)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_absolute_lifetime_ends_the_family_however_often_it_is_used(make_client, settings, clock, redis):
    client = await make_client(settings, refresh_token_ttl=100, refresh_family_ttl=250)
    app, _rs = await setup(client)
    start = int(clock())
    token = (await login(client, app))["refresh_token"]
    key = family_key(token)
    for _ in range(2):
        clock.advance(90)
        status, body, _ = await refresh(client, app, token)
        assert status == 200
        token = body["refresh_token"]
    assert await redis.expiretime(key) == start + 250  # capped: 180 + 100 would pass the absolute end
    assert (await introspect(client, app, token))["exp"] == start + 250
    clock.advance(70)  # 250 s after the login, only 70 s after the last use
    status, body, _ = await refresh(client, app, token)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await redis.expiretime(key) <= int(clock())  # on a real clock Valkey has dropped it by now


async def test_a_lowered_family_lifetime_also_ends_the_families_made_before(make_client, settings, clock):
    """REFRESH_FAMILY_TTL lowered on a redeploy rules the families made under the longer one too: a
    logout's `ended` marker lasts today's REFRESH_FAMILY_TTL, and no family may outlive it."""
    before = await make_client(settings, refresh_token_ttl=1000, refresh_family_ttl=10_000)
    app, _rs = await setup(before)
    token = (await login(before, app))["refresh_token"]
    login_time = int(clock())
    after = await make_client(settings, refresh_token_ttl=500, refresh_family_ttl=500)  # same store
    clock.advance(90)
    status, body, _ = await refresh(after, app, token)
    assert status == 200, body
    assert (await introspect(after, app, body["refresh_token"]))["exp"] == login_time + 500  # not 90 + 500
    clock.advance(420)  # 510 s after the login: past today's 500, within its idle and its own 10,000
    assert (await introspect(after, app, body["refresh_token"]))["active"] is False
    status, refused, _ = await refresh(after, app, body["refresh_token"])
    assert (status, refused["error"]) == (400, "invalid_grant")


# ---- binding and scope ----

async def test_refresh_token_is_bound_to_its_client(client):
    app, _ = await setup(client)
    other = await add_app(client, "other")
    token = (await login(client, app))["refresh_token"]
    status, body, _ = await refresh(client, other, token)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert (await refresh(client, app, token))[0] == 200  # untouched by the attempt


async def test_refresh_may_narrow_the_scope_but_the_family_keeps_its_grant(client):
    app, _ = await setup(client)
    first = await login(client, app, scope="read write")
    status, narrow, _ = await refresh(client, app, first["refresh_token"], scope="read")
    assert status == 200 and narrow["scope"] == "read" and claims_of(narrow["access_token"])["scope"] == "read"
    status, full, _ = await refresh(client, app, narrow["refresh_token"])
    assert status == 200 and full["scope"] == "read write"


async def test_refresh_may_not_widen_and_the_refused_token_stays_usable(client):
    app, _ = await setup(client)
    first = await login(client, app, scope="read")
    status, body, _ = await refresh(client, app, first["refresh_token"], scope="read write")
    assert (status, body["error"]) == (400, "invalid_scope")
    status, body, _ = await refresh(client, app, first["refresh_token"])
    assert status == 200 and body["scope"] == "read"


async def test_malformed_and_unknown_refresh_tokens_are_invalid_grant(client):
    app, _ = await setup(client)
    for value in ("nonsense", "A" * 64, "A" * 63 + "=", "a.b.c"):
        status, body, _ = await refresh(client, app, value)
        assert (status, body["error"]) == (400, "invalid_grant"), value
    status, body, _ = await refresh(client, app, "")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_refresh_picks_up_the_users_current_roles(client):
    app, _ = await setup(client)
    first = await login(client, app)
    store = provider_of(client).store
    user = await store.users.find_user("alice")
    await store.users.save_user(user.__class__(**{**user.to_json(), "roles": ["reader", "editor"]}))
    body = (await refresh(client, app, first["refresh_token"]))[1]
    assert claims_of(body["access_token"])["roles"] == ["reader", "editor"]


async def test_a_disabled_users_refresh_token_is_refused(client, clock):
    app, _ = await setup(client)
    first = await login(client, app)
    await admin.set_disabled(provider_of(client), "alice", True)
    await admin.set_disabled(provider_of(client), "alice", False)
    clock.advance(1)
    status, body, _ = await refresh(client, app, first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")  # enabling again does not revive it
