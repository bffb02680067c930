"""/login: the pending request bound to the browser, CSRF, the one failure message, rate limiting,
a fresh session (and cookie) at every login."""
from __future__ import annotations

import re

import aiohttp
import pytest

from tests.helpers.app import provider_of
from tests.helpers.sso import (
    PASSWORD,
    add_app,
    add_user,
    begin,
    cookie,
    csrf_of,
    doomed_store,
    is_error_page,
    login_page,
    query_of,
    redeem,
    sign_in,
    submit,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.browser.authorize import LOGIN_TTL
from tokensrv.oauth.own_tokens import read_own_jwt
from tokensrv.store import keyspace

FAILURE = "Invalid username or password."


async def pending(client, app, **params):
    flow, resp = await begin(client, app, **params)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    return flow, request_id, csrf


async def test_login_page_is_an_accessible_form_with_csrf_token(client):
    app = await add_app(client)
    _, resp = await begin(client, app)
    page = await client.get(resp.headers["Location"])
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert '<label for="username">' in html and 'id="username" name="username"' in html
    assert '<label for="password">' in html and 'id="password" name="password" type="password"' in html
    assert csrf_of(html) == cookie(client, "tokensrv_csrf")
    assert "tokensrv" in html and "web" in html  # the issuer's display name, the application
    # one script, ours, from our origin (passkeys; the form works without it): nothing inline
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/passkeys.js" defer>']
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    css = await client.get("/static/style.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_display_name_is_escaped(make_client, settings):
    client = await make_client(settings, display_name="<b>Acme</b> login")
    app = await add_app(client)
    _, resp = await begin(client, app)
    html = await (await client.get(resp.headers["Location"])).text()
    assert "&lt;b&gt;Acme&lt;/b&gt; login" in html and "<b>Acme" not in html


async def test_wrong_password_and_unknown_user_get_the_same_message(client):
    app = await add_app(client)
    await add_user(client)
    _, request_id, csrf = await pending(client, app)
    for username, password in (("alice", "wrong password"), ("mallory", PASSWORD), ("alice", "")):
        resp = await submit(client, request_id, csrf, username, password)
        html = await resp.text()
        assert resp.status == 200 and FAILURE in html and 'role="alert"' in html
        assert csrf_of(html) == csrf
    assert cookie(client, "tokensrv_session") is None
    resp = await submit(client, request_id, csrf)
    assert resp.status == 303 and "code" in query_of(resp.headers["Location"])


async def test_disabled_user_cannot_log_in(client):
    app = await add_app(client)
    await add_user(client)
    await admin.set_disabled(provider_of(client), "alice", True)
    _, request_id, csrf = await pending(client, app)
    resp = await submit(client, request_id, csrf)
    assert FAILURE in await resp.text()


@pytest.mark.parametrize("csrf", ["", "forged-token"])
async def test_a_post_without_the_browsers_csrf_token_is_refused(client, csrf):
    app = await add_app(client)
    await add_user(client)
    _, request_id, _ = await pending(client, app)
    resp = await submit(client, request_id, csrf)
    assert resp.status == 400 and is_error_page(await resp.text())
    assert cookie(client, "tokensrv_session") is None


async def test_a_login_started_in_one_browser_cannot_finish_in_another(client):
    app = await add_app(client)
    await add_user(client)
    _, request_id, _ = await pending(client, app)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        page = await other.get(client.make_url(f"/login?request={request_id}"))
        assert page.status == 400 and is_error_page(await page.text())
        # the attacker's own CSRF cookie does not help with the victim's pending request
        other.cookie_jar.update_cookies({"tokensrv_csrf": "attacker"})
        resp = await other.post(client.make_url("/login"), data={
            "request": request_id, "csrf_token": "attacker", "username": "alice", "password": PASSWORD},
            allow_redirects=False)
        assert resp.status == 400 and is_error_page(await resp.text())


@pytest.mark.parametrize("query", ["", "?request=", "?request=unknown"])
async def test_login_page_without_a_pending_request_is_an_error_page(client, query):
    resp = await client.get("/login" + query)
    assert resp.status == 400 and is_error_page(await resp.text())


async def test_pending_request_expires(client, clock):
    app = await add_app(client)
    await add_user(client)
    _, request_id, csrf = await pending(client, app)
    clock.advance(LOGIN_TTL)
    resp = await submit(client, request_id, csrf)
    assert resp.status == 400 and "expired" in await resp.text()


async def test_a_login_form_finishes_once(client):
    app = await add_app(client)
    await add_user(client)
    _, request_id, csrf = await pending(client, app)
    assert (await submit(client, request_id, csrf)).status == 303
    resp = await submit(client, request_id, csrf)
    assert resp.status == 400 and is_error_page(await resp.text())


async def test_too_many_failures_get_a_friendly_429_page(make_client, settings):
    client = await make_client(settings, login_max_failures=2)
    app = await add_app(client)
    await add_user(client)
    _, request_id, csrf = await pending(client, app)
    for _ in range(2):
        assert FAILURE in await (await submit(client, request_id, csrf, password="nope")).text()
    resp = await submit(client, request_id, csrf)  # even the right password, until the window passes
    html = await resp.text()
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in html and "Traceback" not in html


async def test_session_cookie_is_httponly_lax_and_not_the_sid(client, redis):
    app = await add_app(client)
    await add_user(client)
    _, request_id, csrf = await pending(client, app)
    resp = await submit(client, request_id, csrf)
    morsel = resp.cookies["tokensrv_session"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["secure"]
    secret = morsel.value
    flow_answer = query_of(resp.headers["Location"])
    assert flow_answer["code"]
    # the store holds the session under a digest; neither keys nor values contain the cookie
    for key in await redis.keys(keyspace.PREFIX + "*"):
        assert secret not in key
        if await redis.type(key) == "string":
            assert secret not in (await redis.get(key) or "")


async def test_https_issuer_makes_host_prefixed_secure_cookies(make_client, settings):
    client = await make_client(settings, issuer="https://login.example")
    app = await add_app(client)
    await add_user(client)
    _, resp = await begin(client, app)
    morsel = resp.cookies["__Host-tokensrv_csrf"]
    assert morsel["secure"] and morsel["path"] == "/" and morsel["httponly"]
    # the test client is plain http, so hand the Secure cookie back explicitly
    headers = {"Cookie": f"__Host-tokensrv_csrf={morsel.value}"}
    page = await client.get(resp.headers["Location"], headers=headers)
    csrf = csrf_of(await page.text())
    request_id = query_of(resp.headers["Location"])["request"]
    done = await client.post("/login", data={"request": request_id, "csrf_token": csrf, "username": "alice",
                                             "password": PASSWORD}, headers=headers, allow_redirects=False)
    session = done.cookies["__Host-tokensrv_session"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert query_of(done.headers["Location"])["iss"] == "https://login.example"


async def test_every_login_gets_a_new_session_and_cookie(client):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    first_cookie = cookie(client, "tokensrv_session")
    _, first = await redeem(client, flow, answer["code"])
    flow, answer = await sign_in(client, app, prompt="login")
    assert cookie(client, "tokensrv_session") != first_cookie
    _, second = await redeem(client, flow, answer["code"])
    p = provider_of(client)
    first_id, second_id = read_own_jwt(p, first["id_token"], "jwt"), read_own_jwt(p, second["id_token"], "jwt")
    assert first_id["sid"] != second_id["sid"]
    # the old cookie no longer opens anything
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"tokensrv_session": first_cookie})
    _, resp = await begin(client, app)
    assert resp.headers["Location"].startswith("/login")


async def test_another_user_logging_in_ends_the_previous_users_session(client, clock, settings):
    app = await add_app(client)
    await add_user(client)
    await add_user(client, "bob", email=None)
    first = await tokens_after_login(client, app, "alice")
    # prompt=login confirms alice (tests/integration/test_step_up.py); once her session has idled
    # out, its record is still the browser's: bob's login ends it
    clock.advance(settings.session_idle_ttl)
    await tokens_after_login(client, app, "bob")
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": first["refresh_token"]})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def tokens_after_login(client, app, username, **params):
    flow, answer = await sign_in(client, app, username, **params)
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200, body
    return body


async def test_store_down_at_login_fails_closed(make_client, settings, tmp_path):
    async with doomed_store(make_client, settings, tmp_path) as (client, store):
        app = await add_app(client)
        await add_user(client)
        _, request_id, csrf = await pending(client, app)
        store.stop()
        resp = await submit(client, request_id, csrf)
        assert resp.status == 503 and is_error_page(await resp.text())
        assert "tokensrv_session" not in resp.cookies
