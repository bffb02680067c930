"""The account page over HTTP (the test client's cookie jar as the browser, swapped to act as
several; the server's clock injected): sessions listed and ended, one or all others (with the
password asked again when the sign-in is old), a forged form ending nothing, the password change,
a device connected with the device grant then disconnected, and TOTP enrolment raising the session."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import jwt as pyjwt
import pytest

from tests.helpers.device import add_device_client, decide, poll
from tests.helpers.device import signed_in as device_signed_in
from tests.helpers.device import start as device_start
from tests.helpers.oauth import PASSWORD
from tests.helpers.sso import add_app, add_user, begin, cookie, csrf_of, login_page, redeem, sign_in, submit
from tests.helpers.two_step import enrol
from tokensrv.oauth.clients.metadata import secret_digest

NEW_PASSWORD = "a new password, long enough"


class Jars:
    """Several browsers on one test client: each a saved cookie jar."""

    def __init__(self, client):
        self.client, self.saved = client, {}

    def save(self, name):
        self.saved[name] = {m.key: m.value for m in self.client.session.cookie_jar}

    def use(self, name):
        self.client.session.cookie_jar.clear()
        self.client.session.cookie_jar.update_cookies(self.saved.get(name, {}))


async def browser_with_tokens(client, app, username="alice", password=PASSWORD):
    flow, answer = await sign_in(client, app, username, password)
    status, tokens = await redeem(client, flow, answer["code"])
    assert status == 200, tokens
    return tokens


async def account(client):
    resp = await client.get("/account", allow_redirects=False)
    assert resp.status == 200, resp.headers
    html = await resp.text()
    return html, csrf_of(html)


async def post(client, action, **fields):
    _, csrf = await account(client)
    resp = await client.post("/account", data={"csrf_token": csrf, "action": action, **fields},
                             allow_redirects=False)
    assert resp.status == 200, await resp.text()
    return await resp.text()


def sids_on(html):
    return re.findall(r'data-sid="([^"]+)"', html)


async def asks_to_sign_in(client, app):
    _, resp = await begin(client, app)
    return resp.status == 303 and urlsplit(resp.headers["Location"]).path == "/login"


async def refresh_status(client, app, refresh_token):
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": refresh_token})
    return resp.status


@pytest.mark.topologies  # the indexes are keys of their own: every store topology (tests/conftest.py)
async def test_sessions_are_listed_and_another_one_ended_as_logout_would(client):
    app = await add_app(client)
    await add_user(client)
    jars = Jars(client)
    tokens = await browser_with_tokens(client, app)
    first_secret = cookie(client, "tokensrv_session")
    jars.save("first")
    client.session.cookie_jar.clear()
    await browser_with_tokens(client, app)
    jars.save("second")

    html, _ = await account(client)
    sids = sids_on(html)
    assert len(sids) == 2 and html.count("This device") == 1
    assert "Applications: web" in html and "signed in" in html and "with a password" in html
    assert first_secret not in html and secret_digest(first_secret) not in html  # never the cookie nor its digest
    assert 'class="item current" data-sid="' + sids[0] in html  # this browser's is listed first
    first_sid = sids[1]

    html = await post(client, "session-end", sid=first_sid)
    assert "That session is signed out." in html and sids_on(html) == [s for s in sids if s != first_sid]
    assert await refresh_status(client, app, tokens["refresh_token"]) == 400  # its refresh family is refused
    jars.use("first")
    assert await asks_to_sign_in(client, app)
    jars.use("second")
    assert not await asks_to_sign_in(client, app)  # this browser stays signed in


async def test_a_forged_form_ends_no_session_of_another_user(client):
    app = await add_app(client)
    await add_user(client)
    await add_user(client, "bob", email="bob@example.org")
    jars = Jars(client)
    await browser_with_tokens(client, app)
    alice_html, _ = await account(client)
    alice_sid = sids_on(alice_html)[0]
    jars.save("alice")
    client.session.cookie_jar.clear()
    await browser_with_tokens(client, app, "bob")
    html = await post(client, "session-end", sid=alice_sid)
    assert "That session has ended already." in html
    html = await post(client, "sessions-end-others")
    assert "no other sessions" in html
    jars.use("alice")
    assert not await asks_to_sign_in(client, app)


async def test_ending_all_others_asks_for_the_password_when_the_sign_in_is_old(client, clock, settings):
    app = await add_app(client)
    await add_user(client)
    jars = Jars(client)
    for name in ("one", "two", "here"):
        client.session.cookie_jar.clear()
        await browser_with_tokens(client, app)
        jars.save(name)
    clock.advance(settings.recent_auth + 1)
    html = await post(client, "sessions-end-others")
    assert "Confirm it's you" in html and 'name="reauth_password"' in html
    assert '<input type="hidden" name="action" value="sessions-end-others">' in html
    assert len(sids_on(html)) == 3  # nothing ended yet
    html = await post(client, "sessions-end-others", reauth_password="not it")
    assert "That password is not right." in html and len(sids_on(html)) == 3
    html = await post(client, "sessions-end-others", reauth_password=PASSWORD)
    assert "You are signed out everywhere else." in html and len(sids_on(html)) == 1
    for name in ("one", "two"):
        jars.use(name)
        assert await asks_to_sign_in(client, app)
    jars.use("here")
    assert not await asks_to_sign_in(client, app)
    assert "Confirm it" not in await post(client, "sessions-end-others")  # the password renewed auth_time


@pytest.mark.topologies  # the indexes are keys of their own: every store topology (tests/conftest.py)
async def test_a_password_change_ends_everything_else_and_keeps_this_browser(client):
    app = await add_app(client)
    await add_user(client)
    jars = Jars(client)
    other_tokens = await browser_with_tokens(client, app)
    jars.save("other")
    client.session.cookie_jar.clear()
    own_tokens = await browser_with_tokens(client, app)
    old_cookie = cookie(client, "tokensrv_session")

    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
    html = await post(client, "password-change", **{**form, "new_password_again": "something else"})
    assert "The two new passwords are not the same." in html
    html = await post(client, "password-change", **{**form, "new_password": "short", "new_password_again": "short"})
    assert "at least 8 characters" in html
    html = await post(client, "password-change", **{**form, "current_password": "wrong password"})
    assert "Your current password is not right." in html
    assert NEW_PASSWORD not in html and PASSWORD not in html  # passwords are never put back in the page

    html = await post(client, "password-change", **form)
    assert "Your password is changed." in html and len(sids_on(html)) == 1
    assert cookie(client, "tokensrv_session") != old_cookie  # a new session for this browser
    assert not await asks_to_sign_in(client, app)
    for tokens in (own_tokens, other_tokens):
        assert await refresh_status(client, app, tokens["refresh_token"]) == 400
    jars.use("other")
    assert await asks_to_sign_in(client, app)
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    assert (await submit(client, request_id, csrf)).status == 200  # the old password: the form again
    assert (await submit(client, request_id, csrf, password=NEW_PASSWORD)).status == 303


@pytest.mark.topologies  # the indexes are keys of their own: every store topology (tests/conftest.py)
async def test_a_device_is_listed_then_disconnected(client, clock):
    await add_device_client(client)
    await add_user(client)
    _, started = await device_start(client, scope="openid read")
    await device_signed_in(client)
    await decide(client, started["user_code"], "approve")
    clock.advance(5)
    status, tokens = await poll(client, started["device_code"])
    assert status == 200, tokens
    html, _ = await account(client)
    devices = html.split('id="device-list"')[1].split("</ul>")[0]
    assert "tokensrv-cli" in devices
    handle = re.search(r'name="grant" value="([^"]+)"', devices).group(1)
    html = await post(client, "grant-revoke", grant=handle)
    assert "Disconnected" in html and "No device is connected." in html
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": "tokensrv-cli",
                                                    "refresh_token": tokens["refresh_token"]})
    assert (await resp.json())["error"] == "invalid_grant"
    html = await post(client, "grant-revoke", grant=handle)
    assert "That access has ended already." in html


async def test_enrolling_totp_on_the_account_page_raises_the_session_to_two_step(client, clock):
    app = await add_app(client)
    await add_user(client)
    await enrol(client, clock, app)
    flow, answer = await sign_in(client, app)  # the SSO session answers at once
    status, tokens = await redeem(client, flow, answer["code"])
    assert status == 200, tokens
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "urn:tokensrv:acr:mfa")
    html, _ = await account(client)
    assert "with two-step verification" in html
