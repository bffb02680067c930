"""First-party browser apps: the refresh token in an HttpOnly cookie instead of the body, rotated on
use, guarded by the Origin header, cleared at logout."""
from __future__ import annotations

import pytest

from tests.helpers.sso import PASSWORD, add_app, add_user, cookie, csrf_of

ORIGIN = "http://127.0.0.1:9000"


async def spa(client, first_party=True, grant_types=("password", "refresh_token")):
    return await add_app(client, "spa", grant_types=grant_types, first_party=first_party,
                         redirect_uris=(ORIGIN + "/callback",), scopes=("openid", "read"))


async def password_login(client, app, **extra):
    return await client.post("/oauth2/token", data={
        "grant_type": "password", "client_id": app.client_id, "username": "alice", "password": PASSWORD,
        "refresh_token_cookie": "true", **extra})


async def cookie_refresh(client, app, origin=ORIGIN):
    headers = {} if origin is None else {"Origin": origin}
    return await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id},
                             headers=headers)


async def test_password_grant_puts_the_refresh_token_in_a_strict_cookie(client):
    app = await spa(client)
    await add_user(client)
    resp = await password_login(client, app)
    body = await resp.json()
    assert resp.status == 200 and "access_token" in body and "refresh_token" not in body
    morsel = resp.cookies["tokensrv_refresh"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/oauth2/token"
    assert not morsel["secure"]
    assert len(morsel.value) == 64


async def test_refresh_from_the_cookie_rotates_it(client):
    app = await spa(client)
    await add_user(client)
    await password_login(client, app)
    first = cookie(client, "tokensrv_refresh")
    resp = await cookie_refresh(client, app)
    body = await resp.json()
    assert resp.status == 200, body
    assert "access_token" in body and "refresh_token" not in body
    second = cookie(client, "tokensrv_refresh")
    assert second and second != first
    assert (await cookie_refresh(client, app)).status == 200  # the second is used: the first is spent for good
    # the rotated-out value presented again is reuse: the family dies
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": first})
    assert resp.status == 400
    assert (await cookie_refresh(client, app)).status == 400


@pytest.mark.parametrize("origin", [None, "https://evil.example", "http://127.0.0.1:9001", "null"])
async def test_cookie_refresh_needs_one_of_the_clients_origins(client, origin):
    app = await spa(client)
    await add_user(client)
    await password_login(client, app)
    resp = await cookie_refresh(client, app, origin)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


async def test_third_party_clients_cannot_ask_for_the_cookie(client):
    app = await add_app(client, "tp", grant_types=("authorization_code", "refresh_token"))
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token_cookie": "true", "refresh_token": "x" * 64})
    assert resp.status == 400 and (await resp.json())["error"] == "unauthorized_client"


async def test_the_parameter_is_true_or_false(client):
    app = await spa(client)
    await add_user(client)
    resp = await password_login(client, app, refresh_token_cookie="yes")
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"
    resp = await password_login(client, app, refresh_token_cookie="false")
    assert "refresh_token" in await resp.json() and "tokensrv_refresh" not in resp.cookies


async def test_an_explicit_refresh_token_in_the_body_wins_over_the_cookie(client):
    app = await spa(client)
    await add_user(client)
    await password_login(client, app)
    body = await (await password_login(client, app, refresh_token_cookie="false")).json()
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": body["refresh_token"]})
    assert resp.status == 200 and "refresh_token" in await resp.json()


async def test_https_issuer_makes_a_secure_prefixed_cookie(make_client, settings):
    client = await make_client(settings, issuer="https://login.example")
    app = await spa(client)
    await add_user(client)
    resp = await password_login(client, app)
    morsel = resp.cookies["__Secure-tokensrv_refresh"]
    assert morsel["secure"] and morsel["path"] == "/oauth2/token"


async def test_logout_clears_the_cookie(client):
    resp = await client.post("/oauth2/logout", data={})
    html = await resp.text()
    assert "Sign out?" in html
    resp = await client.post("/oauth2/logout", data={"csrf_token": csrf_of(html)})
    assert resp.cookies["tokensrv_refresh"]["max-age"] == "0"
    assert resp.cookies["tokensrv_refresh"]["path"] == "/oauth2/token"
