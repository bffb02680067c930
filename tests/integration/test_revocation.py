"""RFC 7009 revocation, signing a user out everywhere, and ending an SSO session: what dies, at
once, with which deny-list entries (each with a TTL) and which revocation-feed entries."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.oauth import (
    PASSWORD,
    add_app,
    add_client,
    add_user,
    claims_of,
    introspect,
    login,
    post,
    refresh,
    revoke,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.endpoints import revocation
from tokensrv.oauth.own_tokens import Subject, issue_for_user, parse_refresh_token
from tokensrv.store import keyspace

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


async def feed(redis) -> list[dict[str, str]]:
    return [fields for _, fields in await redis.xrange(keyspace.FEED)]


async def setup(client):
    app = await add_app(client)
    await add_user(client)
    rs = await add_client(client, "rs")
    return app, rs


async def test_revoked_access_token_is_inactive_at_once_with_a_ttl_and_a_feed_entry(client, redis, clock):
    app, rs = await setup(client)
    issued = await login(client, app)
    assert (await introspect(client, rs, issued["access_token"]))["active"] is True
    await revoke(client, app, issued["access_token"], token_type_hint="access_token")
    assert (await introspect(client, rs, issued["access_token"]))["active"] is False
    claims = claims_of(issued["access_token"])
    assert await redis.expiretime(keyspace.deny("jti", claims["jti"])) == claims["exp"]
    assert await feed(redis) == [{"k": "jti", "v": claims["jti"], "u": str(claims["exp"]), "t": str(int(clock()))}]
    # the refresh token was not part of the request: it still works
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 200


async def test_revoking_a_refresh_token_kills_its_family_and_its_access_tokens(client, redis):
    app, rs = await setup(client)
    first = await login(client, app)
    second = (await refresh(client, app, first["refresh_token"]))[1]
    await revoke(client, app, second["refresh_token"], token_type_hint="refresh_token")
    assert (await refresh(client, app, second["refresh_token"]))[0] == 400
    for issued in (first, second):
        assert (await introspect(client, rs, issued["access_token"]))["active"] is False
    entries = await feed(redis)
    assert {k: sum(e["k"] == k for e in entries) for k in ("family", "jti")} == {"family": 1, "jti": 2}
    assert {"k": "family", "v": parse_refresh_token(first["refresh_token"])}.items() <= entries[-1].items()


async def test_the_hint_is_only_a_hint(client):
    app, rs = await setup(client)
    issued = await login(client, app)
    await revoke(client, app, issued["refresh_token"], token_type_hint="access_token")
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 400
    other = await login(client, app)
    await revoke(client, app, other["access_token"], token_type_hint="something_else")
    assert (await introspect(client, rs, other["access_token"]))["active"] is False


@pytest.mark.parametrize("value", ["not-a-token", "A" * 64, "a.b.c", "x" * 4000])
async def test_unknown_tokens_are_answered_200_and_change_nothing(client, redis, value):
    app, _ = await setup(client)
    await revoke(client, app, value)
    assert await feed(redis) == []


async def test_expired_access_token_is_answered_200_without_an_entry(client, redis, clock, settings):
    app, _ = await setup(client)
    issued = await login(client, app)
    clock.advance(settings.access_token_ttl)
    await revoke(client, app, issued["access_token"])
    assert await feed(redis) == []


async def test_a_rotated_refresh_token_is_already_dead_revoking_it_is_a_no_op(client):
    app, _ = await setup(client)
    first = await login(client, app)
    second = (await refresh(client, app, first["refresh_token"]))[1]
    await revoke(client, app, first["refresh_token"])
    assert (await refresh(client, app, second["refresh_token"]))[0] == 200


async def test_a_client_may_not_revoke_another_clients_tokens(client):
    app, rs = await setup(client)
    issued = await login(client, app)
    for value in (issued["access_token"], issued["refresh_token"]):
        status, body, _ = await post(client, "/oauth2/revoke", {"token": value}, rs.basic)
        assert (status, body["error"]) == (400, "unauthorized_client")
    assert (await introspect(client, rs, issued["access_token"]))["active"] is True
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 200


async def test_a_public_client_revokes_its_own_refresh_token_by_client_id(client, clock):
    await add_client(client, "spa", public=True, grant_types=("authorization_code", "refresh_token"),
                     redirect_uris=("http://127.0.0.1:3000/cb",))
    user = await add_user(client)
    p = provider_of(client)
    spa = await p.store.clients.get_client("spa")
    issued = (await issue_for_user(p, spa, Subject(user["sub"], int(clock()), "sid-1", ()), "")).response
    status, body, _ = await post(client, "/oauth2/revoke", {"token": issued["refresh_token"], "client_id": "spa"})
    assert status == 200, body
    status, body, _ = await post(client, "/oauth2/token", {
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": "spa"})
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_revocation_needs_client_authentication_and_a_token(client):
    app, _ = await setup(client)
    status, body, headers = await post(client, "/oauth2/revoke", {"token": "x"})
    assert (status, body["error"]) == (401, "invalid_client") and "WWW-Authenticate" in headers
    status, body, _ = await post(client, "/oauth2/revoke", {}, app.basic)
    assert (status, body["error"]) == (400, "invalid_request")


# ---- signing a user out everywhere ----

async def sessions_of(client, app, count: int = 2) -> list[dict]:
    return [await login(client, app) for _ in range(count)]


async def assert_all_dead(client, app, rs, sessions) -> None:
    for issued in sessions:
        assert (await introspect(client, rs, issued["access_token"]))["active"] is False
        assert (await introspect(client, app, issued["refresh_token"]))["active"] is False
        status, body, _ = await refresh(client, app, issued["refresh_token"])
        assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("action", ["revoke", "passwd", "disable", "remove"])
async def test_sign_out_everywhere_refuses_every_family_and_sets_not_before(client, redis, clock, settings, action):
    app, rs = await setup(client)
    sessions = await sessions_of(client, app)
    sub = claims_of(sessions[0]["access_token"])["sub"]
    p = provider_of(client)
    clock.advance(3)
    if action == "revoke":
        await admin.revoke_everywhere(p, "alice")
    elif action == "passwd":
        await admin.set_password(p, "alice", "a brand new password")
    elif action == "disable":
        await admin.set_disabled(p, "alice", True)
    else:
        await admin.remove_user(p, "alice")
    now = int(clock())
    assert await redis.get(keyspace.deny("sub", sub)) == str(now)
    assert await redis.expiretime(keyspace.deny("sub", sub)) == now + settings.max_token_ttl
    assert await feed(redis) == [{"k": "sub", "v": sub, "u": str(now + settings.max_token_ttl), "t": str(now)}]
    await assert_all_dead(client, app, rs, sessions)
    for issued in sessions:  # refused at its first use since, which deletes it
        assert not await redis.exists(keyspace.family(parse_refresh_token(issued["refresh_token"])))
    assert sum(e["k"] == "family" for e in await feed(redis)) == 2


async def test_a_signed_out_family_is_refused_at_its_next_use_and_deleted_then(client, redis, clock):
    """No index finds a user's families: the sign-out leaves them in the store, and the refresh
    grant (which reads the user in the rotation's round trip) refuses and deletes each one."""
    app, _rs = await setup(client)
    before = await login(client, app)
    key = keyspace.family(parse_refresh_token(before["refresh_token"]))
    clock.advance(3)
    await admin.revoke_everywhere(provider_of(client), "alice")
    assert await redis.exists(key)  # still there: it would expire on its own
    assert (await introspect(client, app, before["refresh_token"]))["active"] is False
    status, body, _ = await refresh(client, app, before["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert not await redis.exists(key)
    status, body, _ = await refresh(client, app, before["refresh_token"])  # and it stays refused
    assert (status, body["error"]) == (400, "invalid_grant")
    clock.advance(1)
    after = await login(client, app)  # a login after the sign-out is not affected
    assert (await refresh(client, app, after["refresh_token"]))[0] == 200


async def test_after_a_password_change_only_the_new_password_logs_in(client, clock):
    app, rs = await setup(client)
    await admin.set_password(provider_of(client), "alice", "a brand new password")
    clock.advance(1)  # not-before covers its whole second (fail closed)
    status, body, _ = await post(client, "/oauth2/token", {
        "grant_type": "password", "username": "alice", "password": PASSWORD}, app.basic)
    assert (status, body["error"]) == (400, "invalid_grant")
    fresh = await login(client, app, password="a brand new password")
    assert (await introspect(client, rs, fresh["access_token"]))["active"] is True
    assert (await refresh(client, app, fresh["refresh_token"]))[0] == 200


async def test_tokens_issued_in_the_not_before_second_are_revoked_too(client):
    """Fail closed: the not-before is whole seconds, so a token of that same second is dead."""
    app, rs = await setup(client)
    await admin.revoke_everywhere(provider_of(client), "alice")
    same_second = await login(client, app)
    assert (await introspect(client, rs, same_second["access_token"]))["active"] is False


async def test_enabling_a_user_again_allows_new_logins_only(client, clock):
    app, rs = await setup(client)
    before = await login(client, app)
    p = provider_of(client)
    await admin.set_disabled(p, "alice", True)
    await admin.set_disabled(p, "alice", False)
    clock.advance(1)
    after = await login(client, app)
    assert (await introspect(client, rs, before["access_token"]))["active"] is False
    assert (await introspect(client, rs, after["access_token"]))["active"] is True


async def test_other_users_are_untouched(client, clock):
    app, rs = await setup(client)
    await add_user(client, "bob")
    bob = await login(client, app, "bob")
    await admin.revoke_everywhere(provider_of(client), "alice")
    assert (await introspect(client, rs, bob["access_token"]))["active"] is True
    assert (await refresh(client, app, bob["refresh_token"]))[0] == 200


# ---- ending an SSO session (logout) ----

async def session_tokens(client, clock, sid: str) -> dict:
    """A refresh family minted under the SSO session `sid`, as the code grant mints it."""
    p = provider_of(client)
    app = await p.store.clients.get_client("app")
    user = await p.store.users.find_user("alice")
    return (await issue_for_user(p, app, Subject(user.sub, int(clock()), sid, user.roles), "read")).response


async def test_an_ended_sessions_families_are_refused_at_their_next_use(client, redis, clock, settings):
    app, rs = await setup(client)
    ended, other = await session_tokens(client, clock, "sid-ended"), await session_tokens(client, clock, "sid-other")
    clock.advance(1)
    await revocation.revoke_session(provider_of(client), "sid-ended")
    now = int(clock())
    assert await redis.expiretime(keyspace.ended("sid-ended")) == now + settings.refresh_family_ttl
    assert await redis.expiretime(keyspace.deny("sid", "sid-ended")) == now + settings.max_token_ttl
    assert await feed(redis) == [{"k": "sid", "v": "sid-ended", "u": str(now + settings.max_token_ttl),
                                  "t": str(now)}]  # the feed keeps the token lifetime, not the family's
    assert (await introspect(client, app, ended["refresh_token"]))["active"] is False
    assert (await introspect(client, rs, ended["access_token"]))["active"] is False  # by its sid
    status, body, _ = await refresh(client, app, ended["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert not await redis.exists(keyspace.family(parse_refresh_token(ended["refresh_token"])))
    # the same user's family of another session is untouched
    assert (await introspect(client, app, other["refresh_token"]))["active"] is True
    status, body, _ = await refresh(client, app, other["refresh_token"])
    assert status == 200, body
    assert claims_of(body["access_token"])["sid"] == "sid-other"


async def test_the_access_token_issued_by_a_refresh_racing_the_logout_dies_with_the_family(client, clock):
    """The rotation runs before the session's mark is seen: the family is killed with what it issued."""
    app, _rs = await setup(client)
    ended = await session_tokens(client, clock, "sid-1")
    first_jti = claims_of(ended["access_token"])["jti"]
    await revocation.revoke_session(provider_of(client), "sid-1")
    status, _, _ = await refresh(client, app, ended["refresh_token"])
    assert status == 400
    assert await provider_of(client).store.denylist.denied(first_jti, "", "") == (True, False, 0)


async def test_revoking_a_refresh_token_of_an_ended_session_is_still_answered_200(client, redis, clock):
    app, _ = await setup(client)
    ended = await session_tokens(client, clock, "sid-1")
    await revocation.revoke_session(provider_of(client), "sid-1")
    await revoke(client, app, ended["refresh_token"])  # asserts the 200
    assert not await redis.exists(keyspace.family(parse_refresh_token(ended["refresh_token"])))
    answer = await admin.revoke_token(provider_of(client), ended["access_token"])
    assert answer["revoked"] is False  # already inactive: its sid is denied


async def test_a_family_without_a_session_skips_the_session_check(client, redis, clock):
    app, _ = await setup(client)
    issued = await session_tokens(client, clock, "")
    await redis.set(keyspace.ended(""), "1")  # were it checked, an empty sid would find this
    assert (await introspect(client, app, issued["refresh_token"]))["active"] is True
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 200
