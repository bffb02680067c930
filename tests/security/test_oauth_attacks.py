"""Attacks on the OAuth flows themselves, black-box over HTTP: redirect URI tricks, PKCE downgrade,
code and refresh replay, client impersonation, CSRF, session fixation, user enumeration, header
injection and open redirects. Each test names the section it guards."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import oauth as oauth_helpers
from tests.helpers.app import provider_of
from tests.helpers.sso import (
    LOGOUT_REDIRECT,
    PASSWORD,
    REDIRECT,
    App,
    add_app,
    add_user,
    authorize,
    begin,
    cookie,
    csrf_of,
    is_error_page,
    login_page,
    pkce,
    query_of,
    redeem,
    sign_in,
    submit,
    tokens_for,
)
from tokensrv.admin import operations as admin

pytestmark = pytest.mark.integration

REGISTERED = "https://app.example.com/cb"


def refused_page(resp: aiohttp.ClientResponse, html: str) -> None:
    """An error page and no redirect: nothing goes to an unverified URI (RFC 6749 §4.1.2.1)."""
    assert resp.status == 400, html
    assert "Location" not in resp.headers and is_error_page(html)


@pytest.mark.parametrize("uri", [
    REGISTERED + "/", REGISTERED.upper(), "https://APP.example.com/cb", "https://app.example.com/CB",
    REGISTERED + "/extra", REGISTERED + "/../evil", REGISTERED + "?next=https://evil.example",
    REGISTERED + "#frag", REGISTERED + "%2F", "https://app.example.com/%63b",
    "https://app.example.com@evil.example/cb", "https://evil.example@app.example.com/cb",
    "https://evil.example\\@app.example.com/cb", "https://app.example.com\\@evil.example/cb",
    "https://app.example.com%2F@evil.example/cb", "https://app.example.com.evil.example/cb",
    "https://\u0430pp.example.com/cb",  # U+0430, the Cyrillic a: an IDN homograph
    "https://xn--pp-8cd.example.com/cb",  # and its punycode
    "https://app.example.com:443/cb", "https://app.example.com:8443/cb", "http://app.example.com/cb",
    "//app.example.com/cb", "https:app.example.com/cb", " " + REGISTERED, REGISTERED + "\t",
])
async def test_redirect_uri_must_match_exactly(client: TestClient, uri: str) -> None:
    """RFC 9700 §4.1.1 and §2.1 (exact string matching), RFC 6749 §10.6 and §10.15 (open
    redirector): any variation of the registered URI gets an error page, never a redirect."""
    app = await add_app(client, redirect_uris=(REGISTERED,))
    _, challenge = pkce()
    resp = await authorize(client, App(app.client_id, None, uri), code_challenge=challenge,
                           code_challenge_method="S256", state="s")
    refused_page(resp, await resp.text())


async def test_the_code_is_bound_to_its_redirect_uri(client: TestClient) -> None:
    """RFC 6749 §4.1.3 and §10.6: the token request must repeat the exact redirect_uri."""
    app = await add_app(client, redirect_uris=(REDIRECT, REDIRECT + "2"))
    await add_user(client)
    flow, answer = await sign_in(client, app)
    status, body = await redeem(client, flow, answer["code"], redirect_uri=REDIRECT + "2")
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_pkce_downgrade_and_substitution_are_refused(client: TestClient) -> None:
    """RFC 7636 §4.4-§4.6 and RFC 9700 §2.1.1, §4.8 (PKCE downgrade): a code issued with a
    challenge needs its own verifier; leaving it out or using another code's verifier fails."""
    app = await add_app(client)
    await add_user(client)
    flow, first = await sign_in(client, app)
    other_flow, second = await sign_in(client, app)
    status, body = await redeem(client, flow, first["code"], code_verifier="")  # no verifier
    assert (status, body["error"]) in ((400, "invalid_grant"), (400, "invalid_request"))
    status, body = await redeem(client, flow, second["code"])  # this flow's verifier, other code
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await redeem(client, other_flow, second["code"], code_verifier=pkce()[0])
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(("challenge", "method"), [
    ("a" * 43, "plain"), (pkce()[1], "plain"), (pkce()[1], "s256"), (pkce()[1], "S512"), (pkce()[1], ""),
    ("short", "S256"), ("a" * 129, "S256"), ("a" * 42 + "=", "S256"), ("a" * 42 + "+", "S256"),
    ("a" * 42 + "/", "S256"), ("a" * 42 + " ", "S256"), ("", "S256"),
])
async def test_plain_and_malformed_challenges_are_refused(client: TestClient, challenge: str, method: str) -> None:
    """RFC 7636 §4.2-§4.3 and RFC 9700 §2.1.1: S256 only; the challenge must be 43-128 unreserved
    characters. The error goes back to the (verified) redirect URI with state."""
    app = await add_app(client)
    resp = await authorize(client, app, code_challenge=challenge, code_challenge_method=method, state="st")
    assert resp.status == 303, await resp.text()
    answer = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT)
    assert answer["error"] == "invalid_request" and answer["state"] == "st" and "code" not in answer


async def test_a_replayed_code_is_refused_and_revokes_what_it_issued(client: TestClient) -> None:
    """RFC 6749 §4.1.2 and §10.5, RFC 9700 §4.5: a code is used once; a second use is refused
    and the tokens issued for the first are revoked."""
    app = await add_app(client, public=False)
    rs = await oauth_helpers.add_client(client, "rs")
    await add_user(client)
    flow, answer = await sign_in(client, app)
    status, issued = await redeem(client, flow, answer["code"])
    assert status == 200, issued
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert (await oauth_helpers.introspect(client, rs, issued["access_token"]))["active"] is False
    resp = await client.post("/oauth2/token", headers=app.auth(), data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def test_a_refresh_token_is_bound_to_its_client(client: TestClient) -> None:
    """RFC 6749 §6 and §10.4, RFC 9700 §4.14: another client presenting a refresh token gets
    invalid_grant, and cannot spend it for the rightful client."""
    owner = await add_app(client, "owner", public=False)
    thief = await add_app(client, "thief", public=False)
    await add_user(client)
    issued = await tokens_for(client, owner)
    for app in (thief, App("thief-public", None, REDIRECT)):
        resp = await client.post("/oauth2/token", headers=app.auth(), data={
            "grant_type": "refresh_token", "refresh_token": issued["refresh_token"], **app.form()})
        assert resp.status in (400, 401)
        assert (await resp.json())["error"] in ("invalid_grant", "invalid_client")
    resp = await client.post("/oauth2/token", headers=owner.auth(), data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert resp.status == 200, await resp.text()


async def test_a_refresh_token_is_used_once(client: TestClient) -> None:
    """RFC 9700 §4.14.2 (refresh token rotation, reuse detection)."""
    app = await add_app(client, public=False)
    await add_user(client)
    issued = await tokens_for(client, app)
    data = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    first = await client.post("/oauth2/token", headers=app.auth(), data=data)
    assert first.status == 200
    successor = (await first.json())["refresh_token"]
    second = await client.post("/oauth2/token", headers=app.auth(),  # the successor is used
                               data={"grant_type": "refresh_token", "refresh_token": successor})
    assert second.status == 200
    again = await client.post("/oauth2/token", headers=app.auth(), data=data)
    assert again.status == 400 and (await again.json())["error"] == "invalid_grant"
    rotated = (await second.json())["refresh_token"]  # the reuse revoked the whole family
    after = await client.post("/oauth2/token", headers=app.auth(),
                              data={"grant_type": "refresh_token", "refresh_token": rotated})
    assert after.status == 400


@pytest.mark.parametrize("how", ["public-claims-id", "other-secret", "empty-secret", "both-methods"])
async def test_client_impersonation_is_refused(client: TestClient, how: str) -> None:
    """RFC 6749 §2.3 and §3.2.1, §10.1-§10.2: a confidential client must authenticate; a public
    client cannot use its id, and one client's secret does not open another."""
    victim = await oauth_helpers.add_client(client, "victim")
    other = await oauth_helpers.add_client(client, "other")
    data = {"grant_type": "client_credentials"}
    headers: dict[str, str] = {}
    if how == "public-claims-id":
        data["client_id"] = "victim"
    elif how == "other-secret":
        headers = oauth_helpers.basic("victim", other.secret or "")
    elif how == "empty-secret":
        data.update(client_id="victim", client_secret="")
    else:
        headers = other.basic
        data.update(client_id="victim", client_secret=victim.secret or "")
    resp = await client.post("/oauth2/token", data=data, headers=headers)
    body = await resp.json()
    assert resp.status in (400, 401) and body["error"] in ("invalid_client", "invalid_request"), body
    assert "access_token" not in body


async def test_login_csrf_is_refused(client: TestClient) -> None:
    """RFC 6749 §10.12, OWASP login CSRF: the form needs the browser's own CSRF token."""
    app = await add_app(client)
    await add_user(client)
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    for token in ("", "wrong", csrf[:-1], csrf.upper() if csrf.upper() != csrf else csrf.lower()):
        data = {"request": request_id, "username": "alice", "password": PASSWORD}
        if token:
            data["csrf_token"] = token
        bad = await client.post("/login", data=data, allow_redirects=False)
        refused_page(bad, await bad.text())
    # a CSRF token from another browser session does not fit this one
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as attacker:
        _, other = await begin(client, app)
        page = await attacker.get(client.make_url(other.headers["Location"]))
        assert page.status == 400  # the pending request belongs to the victim's browser
    theirs = await begin_in(client, app)
    bad = await client.post("/login", allow_redirects=False, data={
        "request": request_id, "csrf_token": theirs, "username": "alice", "password": PASSWORD})
    refused_page(bad, await bad.text())
    ok = await submit(client, request_id, csrf)
    assert ok.status == 303 and ok.headers["Location"].startswith(REDIRECT)


async def begin_in(client: TestClient, app: App) -> str:
    """The CSRF token another browser (a fresh cookie jar) gets for its own login page."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, challenge = pkce()
        resp = await other.get(client.make_url("/oauth2/authorize"), allow_redirects=False, params={
            "client_id": app.client_id, "response_type": "code", "redirect_uri": app.redirect_uri,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        page = await other.get(client.make_url(resp.headers["Location"]))
        return csrf_of(await page.text())


async def session_works(client: TestClient, app: App) -> bool:
    resp = await authorize(client, app, code_challenge=pkce()[1], code_challenge_method="S256", prompt="none")
    return "code" in query_of(resp.headers["Location"])


async def test_logout_csrf_does_not_sign_out(client: TestClient) -> None:
    """OIDC RP-Initiated Logout §2-§6 and RFC 6749 §10.12: without an id_token_hint the user must
    confirm with a form bound to the browser; a cross-site POST (no or a wrong csrf_token) does
    not end the session."""
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    for data in ({}, {"csrf_token": "wrong"}, {"csrf_token": await begin_in(client, app)}):
        resp = await client.post("/oauth2/logout", data=data, allow_redirects=False)
        assert resp.status == 200 and "csrf_token" in await resp.text()  # the confirmation form again
        assert await session_works(client, app)
    page = await client.get("/oauth2/logout")
    confirmed = await client.post("/oauth2/logout", data={"csrf_token": csrf_of(await page.text())},
                                  allow_redirects=False)
    assert confirmed.status == 200
    assert not await session_works(client, app)


async def test_session_fixation_a_planted_cookie_is_not_the_session(client: TestClient) -> None:
    """OWASP session fixation, RFC 9700 §4.x: the session cookie after login is new, never one
    set before login (by an attacker), and the planted value opens nothing."""
    app = await add_app(client)
    await add_user(client)
    planted = secrets.token_urlsafe(32)
    # planted for the server's host, as a sibling page or a network attacker would
    client.session.cookie_jar.update_cookies({"tokensrv_session": planted}, response_url=client.make_url("/"))
    await sign_in(client, app)
    after = cookie(client, "tokensrv_session")
    assert after and after != planted
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as attacker:
        attacker.cookie_jar.update_cookies({"tokensrv_session": planted})
        resp = await attacker.get(client.make_url("/oauth2/authorize"), allow_redirects=False, params={
            "client_id": app.client_id, "response_type": "code", "redirect_uri": app.redirect_uri,
            "code_challenge": pkce()[1], "code_challenge_method": "S256", "prompt": "none"})
        assert query_of(resp.headers["Location"])["error"] == "login_required"


def count_password_checks(client: TestClient) -> list[int]:
    """Counts calls into the argon2 pool (instrumentation, not a stub: the real check runs)."""
    pool = provider_of(client).passwords
    calls = [0]
    real: Callable[..., Any] = pool.check

    async def counted(*args: Any) -> Any:
        calls[0] += 1
        return await real(*args)
    pool.check = counted  # type: ignore[method-assign, assignment]
    return calls


async def test_no_user_enumeration_by_message_or_by_work(client: TestClient) -> None:
    """RFC 9700 §4.x / OWASP ASVS V2.2 (enumeration): unknown user, wrong password and disabled
    user get byte-identical answers from the password grant and the login page, and each goes
    through the argon2 check exactly once (no shortcut an attacker could time)."""
    user_app = await oauth_helpers.add_app(client)
    await add_user(client, "alice")
    await add_user(client, "dora")
    await admin.set_disabled(provider_of(client), "dora", True)
    calls = count_password_checks(client)
    grant_answers, page_answers = [], []
    web_app = await add_app(client)
    for username, password in (("nobody", PASSWORD), ("alice", "wrong"), ("dora", PASSWORD)):
        before = calls[0]
        status, body, _ = await oauth_helpers.token(client, user_app, grant_type="password",
                                                    username=username, password=password)
        grant_answers.append((status, body))
        _, resp = await begin(client, web_app)
        request_id, csrf = await login_page(client, resp.headers["Location"])
        page = await submit(client, request_id, csrf, username, password)
        page_answers.append((page.status, (await page.text()).replace(request_id, "").replace(csrf, "")))
        assert calls[0] - before == 2, username
    assert grant_answers[0][0] == 400 and grant_answers[0][1]["error"] == "invalid_grant"
    assert grant_answers.count(grant_answers[0]) == 3 and page_answers.count(page_answers[0]) == 3


@pytest.mark.parametrize("state", ["a\r\nSet-Cookie: evil=1", "a\nLocation: https://evil.example",
                                   "a\rX: y", "%0d%0aSet-Cookie:%20evil=1"])
async def test_state_cannot_inject_headers(client: TestClient, state: str) -> None:
    """RFC 6749 §4.1.2 / §10.14 (HTTP response splitting): `state` is echoed only URL-encoded."""
    app = await add_app(client)
    await add_user(client)
    for resp in (await authorize(client, app, code_challenge="bad", state=state),
                 (await begin(client, app, state=state))[1]):
        assert "evil" not in "".join(k.lower() for k in resp.headers) and "Set-Cookie: evil" not in str(resp.headers)
        assert "\r" not in resp.headers["Location"] and "\n" not in resp.headers["Location"]
    _, answer = await sign_in(client, app, state=state)
    assert answer["state"] == state  # it comes back intact, encoded
    logout = await client.get("/oauth2/logout", allow_redirects=False, params={
        "id_token_hint": (await tokens_for(client, app))["id_token"],
        "post_logout_redirect_uri": LOGOUT_REDIRECT, "state": state})
    assert logout.status == 303 and "\n" not in logout.headers["Location"]
    assert query_of(logout.headers["Location"])["state"] == state
    assert all(c.key != "evil" for c in client.session.cookie_jar)


async def test_no_open_redirect_through_any_return_parameter(client: TestClient) -> None:
    """RFC 6749 §10.15, RFC 9700 §4.11 (open redirection), OIDC RP-Initiated Logout §3: an
    unregistered post_logout_redirect_uri is refused; `next`/`return_to`/`redirect` style
    parameters on the login page are ignored: the only way out is the client's registered URI."""
    app = await add_app(client)
    await add_user(client)
    issued = await tokens_for(client, app)
    for uri in ("https://evil.example/", LOGOUT_REDIRECT + "/x", LOGOUT_REDIRECT + "?a=b", "//evil.example"):
        resp = await client.get("/oauth2/logout", allow_redirects=False, params={
            "id_token_hint": issued["id_token"], "post_logout_redirect_uri": uri})
        refused_page(resp, await resp.text())
    resp = await client.get("/oauth2/logout", allow_redirects=False,
                            params={"post_logout_redirect_uri": LOGOUT_REDIRECT})  # no client named
    refused_page(resp, await resp.text())

    extra = {name: "https://evil.example/" for name in ("next", "return_to", "redirect", "redirect_to", "continue")}
    _, resp = await begin(client, app, prompt="login", **extra)
    location = resp.headers["Location"]
    request_id, csrf = await login_page(client, location + "&" + "&".join(f"{k}=https://evil.example/" for k in extra))
    done = await client.post("/login", allow_redirects=False, data={
        "request": request_id, "csrf_token": csrf, "username": "alice", "password": PASSWORD, **extra})
    assert done.status == 303
    assert urlsplit(done.headers["Location"])._replace(query="").geturl() == REDIRECT
