"""The browser forms refuse posts a browser says come from another site (Origin, Sec-Fetch-Site),
even with a valid CSRF token: defence in depth behind the double-submit token."""
from __future__ import annotations

import pytest

from tests.helpers.sessions import logged_in, refresh_status
from tests.helpers.sso import PASSWORD, add_app, add_user, begin, cookie, csrf_of, login_page
from tokensrv.store import keyspace

ISSUER_ORIGIN = "http://127.0.0.1:8080"  # the settings fixture's issuer
HOSTILE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # sandboxed frames, data: URLs, some redirects
    {"Origin": "http://127.0.0.1:8081"},  # another port is another origin
    {"Origin": "https://127.0.0.1:8080"},  # another scheme too
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain: see server/web/same_origin.py
    {"Origin": ISSUER_ORIGIN, "Sec-Fetch-Site": "cross-site"},
]
FRIENDLY = [
    {},  # old browsers send neither header
    {"Origin": ISSUER_ORIGIN},
    {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # the user typed it
]


async def a_login_form(client):
    app = await add_app(client)
    await add_user(client)
    _, resp = await begin(client, app)
    return await login_page(client, resp.headers["Location"])


def login_data(request_id, csrf, password=PASSWORD):
    return {"request": request_id, "csrf_token": csrf, "username": "alice", "password": password}


@pytest.mark.parametrize("headers", HOSTILE)
async def test_a_cross_site_login_post_is_refused_even_with_a_valid_csrf_token(client, redis, headers):
    request_id, csrf = await a_login_form(client)
    keys_before = set(await redis.keys(keyspace.PREFIX + "*"))
    for password in (PASSWORD, "wrong password"):  # neither a login nor a counted failure
        resp = await client.post("/login", data=login_data(request_id, csrf, password), headers=headers,
                                 allow_redirects=False)
        html = await resp.text()
        assert resp.status == 403 and "Traceback" not in html and "Location" not in resp.headers
        assert "tokensrv_session" not in resp.cookies
    assert cookie(client, "tokensrv_session") is None
    assert set(await redis.keys(keyspace.PREFIX + "*")) == keys_before  # no session, no failure counter
    # the same form, posted by the browser from our own page, still works
    resp = await client.post("/login", data=login_data(request_id, csrf), headers={"Origin": ISSUER_ORIGIN},
                             allow_redirects=False)
    assert resp.status == 303 and cookie(client, "tokensrv_session")


@pytest.mark.parametrize("headers", FRIENDLY)
async def test_same_origin_and_headerless_login_posts_work(client, headers):
    request_id, csrf = await a_login_form(client)
    resp = await client.post("/login", data=login_data(request_id, csrf), headers=headers, allow_redirects=False)
    assert resp.status == 303 and cookie(client, "tokensrv_session")


async def test_the_issuer_origin_is_compared_with_its_default_port_left_out(make_client, settings):
    client = await make_client(settings, issuer="http://ID.example:80/")  # http: cookies over the test client
    request_id, csrf = await a_login_form(client)
    refused = await client.post("/login", data=login_data(request_id, csrf),
                                headers={"Origin": "http://id.example:8080"}, allow_redirects=False)
    assert refused.status == 403
    resp = await client.post("/login", data=login_data(request_id, csrf), headers={"Origin": "http://id.example"},
                             allow_redirects=False)
    assert resp.status == 303


@pytest.mark.parametrize("headers", HOSTILE)
async def test_a_cross_site_logout_confirmation_is_refused(client, headers):
    app = await add_app(client)
    await add_user(client)
    tokens = await logged_in(client, app)
    html = await (await client.get("/oauth2/logout")).text()
    resp = await client.post("/oauth2/logout", data={"csrf_token": csrf_of(html)}, headers=headers)
    assert resp.status == 403 and "Signed out" not in await resp.text()
    assert cookie(client, "tokensrv_session")
    assert await refresh_status(client, app, tokens["refresh_token"]) == 200  # the session lives on
    resp = await client.post("/oauth2/logout", data={"csrf_token": csrf_of(html)}, headers={"Origin": ISSUER_ORIGIN})
    assert resp.status == 200 and "Signed out" in await resp.text()


async def test_a_relying_party_may_still_post_a_logout_request_from_its_site(client):
    """RP-Initiated Logout lets the application POST to the end-session endpoint: without our
    csrf_token it is not a confirmation, so it is not refused but asks the user to confirm."""
    app = await add_app(client)
    await add_user(client)
    await logged_in(client, app)
    resp = await client.post("/oauth2/logout", data={"client_id": app.client_id},
                             headers={"Origin": "http://127.0.0.1:9000", "Sec-Fetch-Site": "cross-site"})
    assert resp.status == 200 and "Sign out?" in await resp.text()
    assert cookie(client, "tokensrv_session")
