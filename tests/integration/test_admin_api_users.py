"""The admin API's user routes (and their sessions and consents), keys and token revocation against
the real server and store: happy paths, 400 naming the field, 404, 409; concurrent PATCHes lose
nothing; `sub` never changes."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.helpers.admin_api import AdminAPI, start_admin_api
from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD, add_client, introspect, login, token
from tests.helpers.sso import add_app, add_user, tokens_for


@pytest.fixture
async def api(make_client, settings):
    async with aiohttp.ClientSession() as http:
        yield await start_admin_api(make_client, settings, http)


def audited(caplog, prefix: str) -> list[dict]:
    fields = [getattr(r, "fields", {}) for r in caplog.records]
    return [f for f in fields if str(f.get("event", "")).startswith(prefix)]


async def test_a_user_is_added_shown_changed_and_removed(api: AdminAPI, caplog):
    caplog.set_level(logging.INFO)
    status, added, _ = await api.call("POST", "/admin/users", {
        "username": "bob", "email": "bob@example.org", "roles": ["reader"], "groups": ["staff"],
        "attributes": {"department": "ops"}, "password": PASSWORD})
    assert status == 201 and added["username"] == "bob" and added["roles"] == ["reader"]
    assert (await api.call("GET", "/admin/users/bob"))[1] == added
    assert [u["username"] for u in (await api.call("GET", "/admin/users"))[1]] == ["bob"]
    status, changed, _ = await api.call("PATCH", "/admin/users/bob", {"roles": ["admin"], "email": None,
                                                                       "attributes": {}})
    assert status == 200 and changed["sub"] == added["sub"]
    assert (changed["roles"], changed["email"], changed["attributes"], changed["groups"]) == (
        ["admin"], None, {}, ["staff"])
    assert (await api.call("PUT", "/admin/users/bob/password", {"password": "another long password"}))[0] == 204
    app = await add_client(api.public, "first", grant_types=("password",), first_party=True)
    assert (await token(api.public, app, grant_type="password", username="bob",
                        password="another long password"))[0] == 200
    assert (await api.call("DELETE", "/admin/users/bob"))[0] == 204
    assert (await api.call("GET", "/admin/users/bob"))[0] == 404
    events = audited(caplog, "admin.user_")
    assert [e["event"] for e in events] == ["admin.user_added", "admin.user_updated", "admin.user_password_set",
                                            "admin.user_removed"]
    assert all(e["caller"] == "ops" and e["via"] == "api" for e in events)


async def test_a_user_without_a_password_cannot_sign_in_until_one_is_set(api: AdminAPI):
    assert (await api.call("POST", "/admin/users", {"username": "carol"}))[0] == 201
    app = await add_client(api.public, "first", grant_types=("password",), first_party=True)
    for password in ("", "anything at all"):
        status, body, _ = await token(api.public, app, grant_type="password", username="carol", password=password)
        assert status == 400 and body["error"] in ("invalid_grant", "invalid_request"), body
    assert (await api.call("PUT", "/admin/users/carol/password", {"password": PASSWORD}))[0] == 204
    assert (await token(api.public, app, grant_type="password", username="carol", password=PASSWORD))[0] == 200


async def test_disabling_over_patch_ends_the_users_tokens(api: AdminAPI):
    await add_user(api.public, "alice")
    app = await add_client(api.public, "first", grant_types=("password",), first_party=True)
    issued = await login(api.public, app, "alice")
    status, changed, _ = await api.call("PATCH", "/admin/users/alice", {"disabled": True})
    assert status == 200 and changed["disabled"] is True
    assert (await introspect(api.public, app, issued["access_token"]))["active"] is False
    status, changed, _ = await api.call("PATCH", "/admin/users/alice", {"disabled": False})
    assert status == 200 and changed["disabled"] is False


async def test_concurrent_patches_of_a_user_lose_nothing(api: AdminAPI):
    await add_user(api.public, "alice")
    changes = [{"email": "a@example.org"}, {"roles": ["one", "two"]}, {"groups": ["g"]},
               {"attributes": {"k": "v"}}]
    answers = await asyncio.gather(*(api.call("PATCH", "/admin/users/alice", c) for c in changes))
    assert [status for status, _, _ in answers] == [200] * len(changes)
    shown = (await api.call("GET", "/admin/users/alice"))[1]
    assert (shown["email"], shown["roles"], shown["groups"], shown["attributes"]) == (
        "a@example.org", ["one", "two"], ["g"], {"k": "v"})


@pytest.mark.parametrize(("method", "path", "body", "status", "error", "names"), [
    ("POST", "/admin/users", {"username": "x", "nickname": "y"}, 400, "invalid_request", "nickname"),
    ("POST", "/admin/users", {"email": "x@example.org"}, 400, "invalid_request", "username"),
    ("POST", "/admin/users", {"username": "x", "roles": "admin"}, 400, "invalid_request", "roles"),
    ("POST", "/admin/users", {"username": "x", "attributes": {"a": 1}}, 400, "invalid_request", "attributes"),
    ("POST", "/admin/users", {"username": "x", "email": "no-at-sign"}, 400, "invalid_request", "email"),
    ("POST", "/admin/users", {"username": "x", "password": "short"}, 400, "invalid_request", "password"),
    ("POST", "/admin/users", {"username": "alice"}, 409, "conflict", "alice"),
    ("GET", "/admin/users/nobody", None, 404, "not_found", "nobody"),
    ("PATCH", "/admin/users/nobody", {"roles": []}, 404, "not_found", "nobody"),
    ("PATCH", "/admin/users/alice", {"sub": "x"}, 400, "invalid_request", "sub"),
    ("PATCH", "/admin/users/alice", {"disabled": "yes"}, 400, "invalid_request", "disabled"),
    ("PUT", "/admin/users/alice/password", {}, 400, "invalid_request", "password"),
    ("PUT", "/admin/users/nobody/password", {"password": "a long enough password"}, 404, "not_found", "nobody"),
    ("DELETE", "/admin/users/nobody", None, 404, "not_found", "nobody"),
    ("GET", "/admin/users/nobody/sessions", None, 404, "not_found", "nobody"),
    ("DELETE", "/admin/users/alice/sessions/nosuchsid", None, 404, "not_found", "nosuchsid"),
    ("POST", "/admin/users/nobody/revoke", None, 404, "not_found", "nobody"),
    ("GET", "/admin/users/nobody/consents", None, 404, "not_found", "nobody"),
    ("DELETE", "/admin/users/alice/consents/web", None, 404, "not_found", "web"),
    ("POST", "/admin/keys/nokid/revoke", None, 404, "not_found", "nokid"),
    ("POST", "/admin/tokens/revoke", {}, 400, "invalid_request", "token"),
    ("POST", "/admin/tokens/revoke", {"token": 5}, 400, "invalid_request", "token"),
])
async def test_bad_requests_get_a_precise_error(api: AdminAPI, method, path, body, status, error, names):
    await add_user(api.public, "alice")
    got, answer, _ = await api.call(method, path, body)
    assert (got, answer["error"]) == (status, error), answer
    assert names in answer["error_description"]


async def test_sessions_are_listed_and_ended_one_or_all(api: AdminAPI):
    await add_user(api.public, "alice")
    app = await add_app(api.public, "web")
    for _ in range(2):  # two browsers: a fresh cookie jar each
        api.public.session.cookie_jar.clear()
        await tokens_for(api.public, app)
    status, sessions, _ = await api.call("GET", "/admin/users/alice/sessions")
    assert status == 200 and len(sessions) == 2
    assert {"sid", "created_at", "last_seen_at", "clients"} <= set(sessions[0])
    assert isinstance(sessions[0]["created_at"], int) and sessions[0]["clients"] == ["web"]
    assert (await api.call("DELETE", f"/admin/users/alice/sessions/{sessions[0]['sid']}"))[0] == 204
    remaining = (await api.call("GET", "/admin/users/alice/sessions"))[1]
    assert [s["sid"] for s in remaining] == [sessions[1]["sid"]]
    assert (await api.call("DELETE", "/admin/users/alice/sessions"))[0] == 204
    assert (await api.call("GET", "/admin/users/alice/sessions"))[1] == []


async def test_revoke_ends_every_token_of_the_user(api: AdminAPI):
    await add_user(api.public, "alice")
    app = await add_client(api.public, "first", grant_types=("password", "refresh_token"), first_party=True)
    issued = await login(api.public, app, "alice")
    status, answer, _ = await api.call("POST", "/admin/users/alice/revoke")
    assert status == 200 and answer["username"] == "alice"
    assert (await introspect(api.public, app, issued["access_token"]))["active"] is False


async def test_consents_are_listed_and_withdrawn(api: AdminAPI):
    user = await add_user(api.public, "alice")
    await add_app(api.public, "web")
    p = provider_of(api.public)
    await p.store.consents.grant_consent(user["sub"], "web", ["openid", "profile"], p.now())
    status, consents, _ = await api.call("GET", "/admin/users/alice/consents")
    assert status == 200 and [(c["client_id"], c["scopes"]) for c in consents] == [("web", "openid profile")]
    assert (await api.call("DELETE", "/admin/users/alice/consents/web"))[0] == 204
    assert (await api.call("GET", "/admin/users/alice/consents"))[1] == []


async def test_keys_are_listed_rotated_and_revoked(api: AdminAPI, caplog):
    caplog.set_level(logging.INFO)
    status, keys, _ = await api.call("GET", "/admin/keys")
    assert status == 200 and any(k["state"] == "current" for k in keys)
    status, rotated, _ = await api.call("POST", "/admin/keys/rotate")
    assert status == 200 and rotated
    victim = next(k["kid"] for k in rotated if k["state"] == "current")
    status, after, _ = await api.call("POST", f"/admin/keys/{victim}/revoke")
    assert status == 200 and victim not in [k["kid"] for k in after if k["state"] in ("current", "next")]
    assert [e["event"] for e in audited(caplog, "admin.key")] == ["admin.keys_rotated", "admin.key_revoked"]


async def test_an_unknown_key_is_404_without_the_servers_paths(api: AdminAPI):
    status, body, _ = await api.call("POST", "/admin/keys/nope/revoke")
    assert (status, body["error"]) == (404, "not_found") and "nope" in body["error_description"]
    assert str(provider_of(api.public).settings.keys_dir) not in body["error_description"]


async def test_a_token_is_revoked(api: AdminAPI, caplog):
    caplog.set_level(logging.INFO)
    svc = await add_client(api.public, "svc")
    issued = (await token(api.public, svc, grant_type="client_credentials"))[1]["access_token"]
    status, answer, _ = await api.call("POST", "/admin/tokens/revoke", {"token": issued})
    assert status == 200 and answer["revoked"] is True and answer["client_id"] == "svc"
    assert (await introspect(api.public, svc, issued))["active"] is False
    status, answer, _ = await api.call("POST", "/admin/tokens/revoke", {"token": issued})
    assert status == 200 and answer["revoked"] is False
    assert issued not in caplog.text
