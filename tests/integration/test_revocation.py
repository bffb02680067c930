"""RFC 7009 revocation, and signing a user out everywhere: what dies, at once, with which
deny-list entries (each with a TTL) and which revocation-feed entries."""
from __future__ import annotations

import pytest

from tests.conftest import provider_of
from tests.integration.oauth_helpers import (
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
from tokensrv import admin
from tokensrv.oauth.tokens import Subject, issue_for_user, parse_refresh_token

FEED = "tokensrv:revocations"


async def feed(redis) -> list[dict[str, str]]:
    return [fields for _, fields in await redis.xrange(FEED)]


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
    assert await redis.expiretime("tokensrv:deny:jti:" + claims["jti"]) == claims["exp"]
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
    assert {"family": 1, "jti": 2} == {k: sum(e["k"] == k for e in entries) for k in ("family", "jti")}
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
    spa = await p.store.get_client("spa")
    issued = await issue_for_user(p, spa, Subject(user["sub"], int(clock()), "sid-1", ()), "")
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
async def test_sign_out_everywhere_deletes_every_family_and_sets_not_before(client, redis, clock, settings, action):
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
    await assert_all_dead(client, app, rs, sessions)
    for issued in sessions:  # deleted at once, not only refused at the next use
        assert not await redis.exists("tokensrv:rf:" + parse_refresh_token(issued["refresh_token"]))
    now = int(clock())
    assert await redis.get("tokensrv:deny:sub:" + sub) == str(now)
    assert await redis.expiretime("tokensrv:deny:sub:" + sub) == now + settings.max_token_ttl
    entries = await feed(redis)
    assert {"k": "sub", "v": sub, "u": str(now + settings.max_token_ttl), "t": str(now)} in entries
    assert sum(e["k"] == "family" for e in entries) == 2


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
