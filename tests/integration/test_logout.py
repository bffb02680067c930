"""/oauth2/logout: RP-initiated logout with id_token_hint, the confirmation page without one,
registered post_logout_redirect_uri only, and what a logout revokes."""
from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.helpers.app import provider_of
from tests.helpers.sessions import logged_in, refresh_status
from tests.helpers.sso import (
    LOGOUT_REDIRECT,
    add_app,
    add_user,
    begin,
    cookie,
    csrf_of,
    is_error_page,
)
from tokensrv.oauth.own_tokens import read_own_jwt

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

ISSUER = "http://127.0.0.1:8080"


async def userinfo_status(client, access_token):
    resp = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return resp.status


async def assert_login_page_next(client, app):
    _, resp = await begin(client, app)
    assert resp.headers["Location"].startswith("/login?"), resp.headers["Location"]


async def test_logout_with_hint_revokes_the_session_and_redirects_with_state(client):
    app_a = await add_app(client, "app-a")
    app_b = await add_app(client, "app-b")
    await add_user(client)
    a = await logged_in(client, app_a)
    b = await logged_in(client, app_b)  # on the SSO session: same sid
    resp = await client.get("/oauth2/logout", params={
        "id_token_hint": a["id_token"], "post_logout_redirect_uri": LOGOUT_REDIRECT, "state": "s1"},
        allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == LOGOUT_REDIRECT + "?state=s1"
    assert resp.cookies["tokensrv_session"]["max-age"] == "0"
    assert resp.cookies["tokensrv_refresh"]["path"] == "/oauth2/token"
    for app, tokens in ((app_a, a), (app_b, b)):
        assert await refresh_status(client, app, tokens["refresh_token"]) == 400
        assert await userinfo_status(client, tokens["access_token"]) == 401
    sid = read_own_jwt(provider_of(client), a["id_token"], "jwt")["sid"]
    _, sid_revoked, _ = await provider_of(client).store.denylist.denied("", sid, "")
    assert sid_revoked
    await assert_login_page_next(client, app_a)


async def test_an_expired_hint_still_works(client, clock):
    app = await add_app(client)
    await add_user(client)
    tokens = await logged_in(client, app)
    clock.advance(provider_of(client).settings.id_token_ttl + 60)
    resp = await client.get("/oauth2/logout", params={"id_token_hint": tokens["id_token"]},
                            allow_redirects=False)
    assert resp.status == 200 and "Signed out" in await resp.text()
    assert cookie(client, "tokensrv_session") is None


async def test_hint_from_another_browser_revokes_that_session(client):
    """The application logs its user out from wherever: the hint's session dies even without the cookie."""
    app = await add_app(client)
    await add_user(client)
    tokens = await logged_in(client, app)
    browser_cookie = cookie(client, "tokensrv_session")
    client.session.cookie_jar.clear()
    resp = await client.get("/oauth2/logout", params={"id_token_hint": tokens["id_token"]})
    assert resp.status == 200
    assert await refresh_status(client, app, tokens["refresh_token"]) == 400
    client.session.cookie_jar.update_cookies({"tokensrv_session": browser_cookie})
    await assert_login_page_next(client, app)  # the browser's session is dead too (its sid is denied)


def foreign_id_token(claims):
    key = RSAKey.generate_key(2048)
    return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, key)


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "access-token", "foreign"])
async def test_a_hint_we_did_not_issue_as_an_id_token_is_refused(client, hint):
    app = await add_app(client)
    await add_user(client)
    tokens = await logged_in(client, app)
    if hint == "access-token":
        hint = tokens["access_token"]
    elif hint == "foreign":
        hint = foreign_id_token({"iss": ISSUER, "sub": "x", "aud": app.client_id, "exp": 4_000_000_000})
    resp = await client.get("/oauth2/logout", params={"id_token_hint": hint,
                                                      "post_logout_redirect_uri": LOGOUT_REDIRECT},
                            allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers and is_error_page(await resp.text())
    assert await refresh_status(client, app, tokens["refresh_token"]) == 200


@pytest.mark.parametrize("params", [
    {"post_logout_redirect_uri": "https://evil.example/"},
    {"post_logout_redirect_uri": LOGOUT_REDIRECT + "/x"},
    {"post_logout_redirect_uri": LOGOUT_REDIRECT, "client_id": "other"},  # not the hint's audience
])
async def test_unregistered_post_logout_redirect_uri_is_never_followed(client, params):
    app = await add_app(client)
    await add_app(client, "other", post_logout_redirect_uris=())
    await add_user(client)
    tokens = await logged_in(client, app)
    resp = await client.get("/oauth2/logout", params={"id_token_hint": tokens["id_token"], **params},
                            allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers
    assert await refresh_status(client, app, tokens["refresh_token"]) == 200


async def test_post_logout_redirect_uri_without_hint_or_client_is_refused(client):
    resp = await client.get("/oauth2/logout", params={"post_logout_redirect_uri": LOGOUT_REDIRECT},
                            allow_redirects=False)
    assert resp.status == 400 and is_error_page(await resp.text())


async def test_without_hint_the_user_confirms_first(client):
    app = await add_app(client)
    await add_user(client)
    tokens = await logged_in(client, app)
    page = await client.get("/oauth2/logout", params={"client_id": app.client_id, "state": "s2",
                                                      "post_logout_redirect_uri": LOGOUT_REDIRECT})
    html = await page.text()
    assert page.status == 200 and "Sign out?" in html and 'method="post"' in html
    assert await refresh_status(client, app, tokens["refresh_token"]) == 200  # nothing happened yet
    resp = await client.post("/oauth2/logout", data={
        "csrf_token": csrf_of(html), "client_id": app.client_id, "state": "s2",
        "post_logout_redirect_uri": LOGOUT_REDIRECT}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == LOGOUT_REDIRECT + "?state=s2"
    assert await userinfo_status(client, tokens["access_token"]) == 401
    await assert_login_page_next(client, app)


async def test_confirmation_without_a_redirect_shows_signed_out(client):
    app = await add_app(client)
    await add_user(client)
    await logged_in(client, app)
    html = await (await client.get("/oauth2/logout")).text()
    resp = await client.post("/oauth2/logout", data={"csrf_token": csrf_of(html)})
    assert resp.status == 200 and "Signed out" in await resp.text()
    await assert_login_page_next(client, app)


@pytest.mark.parametrize("csrf", [None, "forged"])
async def test_a_third_party_post_only_gets_the_confirmation_page(client, csrf):
    app = await add_app(client)
    await add_user(client)
    tokens = await logged_in(client, app)
    data = {} if csrf is None else {"csrf_token": csrf}
    resp = await client.post("/oauth2/logout", data=data)
    assert resp.status == 200 and "Sign out?" in await resp.text()
    assert await refresh_status(client, app, tokens["refresh_token"]) == 200


async def test_a_hint_for_another_user_asks_for_confirmation(client):
    app = await add_app(client)
    await add_user(client)
    await add_user(client, "bob", email=None)
    alice = await logged_in(client, app)
    # bob in this browser (prompt=login would now confirm alice: tests/integration/test_step_up.py),
    # its cookies gone, as after a restart without them
    client.session.cookie_jar.clear()
    bob = await logged_in(client, app, "bob")  # the browser's session is now bob's
    resp = await client.get("/oauth2/logout", params={"id_token_hint": alice["id_token"]})
    assert "Sign out?" in await resp.text()
    assert await refresh_status(client, app, bob["refresh_token"]) == 200


async def test_logout_after_a_second_login_of_the_same_user_ends_both_sessions(client):
    app = await add_app(client)
    await add_user(client)
    first = await logged_in(client, app)
    second = await logged_in(client, app, prompt="login")
    resp = await client.get("/oauth2/logout", params={"id_token_hint": second["id_token"]})
    assert resp.status == 200
    assert await refresh_status(client, app, first["refresh_token"]) == 400
    assert await refresh_status(client, app, second["refresh_token"]) == 400


async def test_logout_pages_carry_the_security_headers(client):
    resp = await client.get("/oauth2/logout")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
