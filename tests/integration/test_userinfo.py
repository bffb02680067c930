"""/oauth2/userinfo (OIDC Core §5.3): bearer token checks with RFC 6750 errors, claims by scope."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.sso import add_app, add_user, redeem, sign_in
from tokensrv.admin import operations as admin


async def tokens(client, scope="openid profile email", username="alice"):
    app = await add_app(client, scopes=("openid", "profile", "email", "read"))
    flow, answer = await sign_in(client, app, username, scope=scope)
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200, body
    return body


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("scope", "claims"), [
    ("openid", {"sub"}),
    ("openid profile", {"sub", "preferred_username", "name"}),
    ("openid email", {"sub", "email", "email_verified"}),
    ("openid profile email", {"sub", "preferred_username", "name", "email", "email_verified"}),
])
async def test_claims_follow_the_scopes(client, scope, claims):
    user = await add_user(client)
    body = await tokens(client, scope)
    resp = await client.get("/oauth2/userinfo", headers=bearer(body["access_token"]))
    info = await resp.json()
    assert resp.status == 200 and set(info) == claims
    assert info["sub"] == user["sub"]
    assert resp.headers["Cache-Control"] == "no-store"
    if "profile" in scope:
        assert info["preferred_username"] == info["name"] == "alice"
    if "email" in scope:
        assert info["email"] == "alice@example.org" and info["email_verified"] is False


async def test_no_email_claim_for_a_user_without_an_address(client):
    await add_user(client, "bob", email=None)
    body = await tokens(client, username="bob")
    info = await (await client.get("/oauth2/userinfo", headers=bearer(body["access_token"]))).json()
    assert "email" not in info and info["preferred_username"] == "bob"


async def test_post_with_header_or_form_body(client):
    await add_user(client)
    token = (await tokens(client))["access_token"]
    resp = await client.post("/oauth2/userinfo", headers=bearer(token))
    assert resp.status == 200
    resp = await client.post("/oauth2/userinfo", data={"access_token": token})
    assert resp.status == 200
    resp = await client.post("/oauth2/userinfo", data={"access_token": token}, headers=bearer(token))
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer "])
async def test_without_a_bearer_token_the_answer_is_a_bare_challenge(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = await client.get("/oauth2/userinfo", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="tokensrv", DPoP realm="tokensrv", algs=')


async def test_bad_tokens_are_invalid_token(client, clock):
    await add_user(client)
    body = await tokens(client)
    for token in ("not-a-jwt", body["id_token"], body["refresh_token"], body["access_token"][:-4] + "AAAA"):
        resp = await client.get("/oauth2/userinfo", headers=bearer(token))
        assert resp.status == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        assert (await resp.json())["error"] == "invalid_token"
    clock.advance(provider_of(client).settings.access_token_ttl)
    resp = await client.get("/oauth2/userinfo", headers=bearer(body["access_token"]))
    assert resp.status == 401


async def test_a_token_without_openid_lacks_scope(client):
    await add_user(client)
    body = await tokens(client, scope="profile")
    resp = await client.get("/oauth2/userinfo", headers=bearer(body["access_token"]))
    assert resp.status == 403 and 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


async def test_a_clients_own_token_has_no_userinfo(client):
    svc = await add_app(client, "svc", public=False, grant_types=("client_credentials",), scopes=("openid",))
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=svc.auth())
    token = (await resp.json())["access_token"]
    resp = await client.get("/oauth2/userinfo", headers=bearer(token))
    assert resp.status == 401


@pytest.mark.parametrize("action", ["disable", "revoke", "remove"])
async def test_tokens_of_disabled_signed_out_or_removed_users_stop_working(client, clock, action):
    await add_user(client)
    body = await tokens(client)
    clock.advance(1)  # not-before is at whole-second resolution, after the token's iat
    p = provider_of(client)
    if action == "disable":
        await admin.set_disabled(p, "alice", True)
    elif action == "revoke":
        await admin.revoke_everywhere(p, "alice")
    else:
        await admin.remove_user(p, "alice")
    resp = await client.get("/oauth2/userinfo", headers=bearer(body["access_token"]))
    assert resp.status == 401
