"""Consent over HTTP (the test client's cookie jar as the browser): a registered client and an
operator's client marked consent_required ask, a first-party client skips, the grant is remembered,
more scopes ask again, prompt=consent always asks, prompt=none is consent_required, Deny is
access_denied, the page is bound to its browser and user, withdrawing (account page, CLI) ends the
client's refresh tokens, and `tokensrv user consents` lists and revokes."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.helpers.app import provider_of
from tests.helpers.passkeys import assert_400, post_json
from tests.helpers.processes import run_cli
from tests.helpers.sso import (
    PASSWORD,
    REDIRECT,
    App,
    add_app,
    add_user,
    begin,
    cookie,
    csrf_of,
    is_error_page,
    login_page,
    query_of,
    redeem,
    submit,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

SCOPES = ("openid", "profile", "email", "offline_access")


@pytest.fixture
async def server(make_client, settings):
    return await make_client(settings, registration="on")


async def third_party(server, client_id="thirdapp", **metadata) -> App:
    """An operator's client that asks, as a registered one does (`client add --consent required`)."""
    metadata = {"grant_types": ("authorization_code", "refresh_token"), **metadata}
    created = await admin.add_client(provider_of(server), client_id, ClientMetadata(
        public=True, redirect_uris=(REDIRECT,), scope=SCOPES,
        consent_required=True, client_name="Photo Printer", policy_uri="https://printer.example/privacy",
        **metadata))
    assert created["client_secret"] is None
    return App(client_id, None, REDIRECT)


async def to_consent(server, app, **params):
    """Authorize (signing in on the form if need be): the flow and where the browser is sent next."""
    flow, resp = await begin(server, app, **params)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    if urlsplit(location).path == "/login":
        request_id, csrf = await login_page(server, location)
        resp = await submit(server, request_id, csrf)
        assert resp.status == 303, await resp.text()
        location = resp.headers["Location"]
    return flow, location


async def consent_page(server, location) -> tuple[str, str, str]:
    assert urlsplit(location).path == "/consent", location
    resp = await server.get(location)
    html = await resp.text()
    assert resp.status == 200, html
    return query_of(location)["request"], csrf_of(html), html


async def answer(server, location, decision) -> str:
    request_id, csrf, _ = await consent_page(server, location)
    resp = await server.post("/consent", data={"request": request_id, "csrf_token": csrf, "decision": decision},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return resp.headers["Location"]


async def allowed_tokens(server, app, **params):
    flow, location = await to_consent(server, app, **params)
    back = await answer(server, location, "allow")
    assert back.startswith(REDIRECT), back
    status, tokens = await redeem(server, flow, query_of(back)["code"])
    assert status == 200, tokens
    return tokens


async def test_a_registered_client_asks_and_names_what_it_wants_in_words(server):
    await add_user(server)
    resp = await server.post("/oauth2/register", json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Notes <3",
        "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile email",
        "tos_uri": "https://notes.example/terms"},
        headers={"Authorization": "Bearer " + (await admin.mint_initial_token(provider_of(server), 600, 1))[
            "initial_access_token"]})
    body = await resp.json()
    assert resp.status == 201, body
    app = App(body["client_id"], None, REDIRECT)
    assert admin.client_view(await provider_of(server).store.clients.get_client(app.client_id))["asks_consent"]
    flow, location = await to_consent(server, app)
    _, _, html = await consent_page(server, location)
    assert "Notes &lt;3" in html and "<3" not in html.replace("&lt;3", "")
    assert 'id="consent-username">alice<' in html and 'href="https://notes.example/terms"' in html
    assert "See your email address" in html and 'data-scope="openid"' in html
    back = await answer(server, location, "allow")
    status, tokens = await redeem(server, flow, query_of(back)["code"])
    assert status == 200 and tokens["scope"] == "openid profile email"


async def test_a_first_party_client_and_an_ordinary_operators_client_skip_it(server):
    await add_user(server)
    for app in (await add_app(server, "own", first_party=True), await add_app(server, "ops")):
        _, location = await to_consent(server, app)
        assert location.startswith(REDIRECT) and "code" in query_of(location)


async def test_the_grant_is_remembered_and_more_scopes_ask_again(server):
    await add_user(server)
    app = await third_party(server)
    await allowed_tokens(server, app, scope="openid profile")
    _, location = await to_consent(server, app, scope="openid")  # within what was allowed: no page
    assert location.startswith(REDIRECT) and "code" in query_of(location)
    _, location = await to_consent(server, app, scope="openid profile email")  # email is new: asks
    _, _, html = await consent_page(server, location)
    assert all(f'data-scope="{s}"' in html for s in ("openid", "profile", "email"))
    await answer(server, location, "allow")
    consent = await provider_of(server).store.consents.get_consent(
        (await provider_of(server).store.users.find_user("alice")).sub, app.client_id)
    assert consent is not None and consent.scopes == ("email", "openid", "profile")


async def test_prompt_consent_always_asks_and_prompt_none_without_consent_is_consent_required(server):
    await add_user(server)
    app = await third_party(server)
    # signed in first (the session), on a first-party app: prompt=none then fails only for consent
    await to_consent(server, await add_app(server, "own", first_party=True))
    flow, resp = await begin(server, app, prompt="none")
    back = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT)
    assert back["error"] == "consent_required" and back["state"] == flow.state and "code" not in back
    await allowed_tokens(server, app, scope="openid profile email")
    _, resp = await begin(server, app, prompt="none")  # allowed now: the code, silently
    assert "code" in query_of(resp.headers["Location"])
    _, location = await to_consent(server, app, prompt="consent")
    assert urlsplit(location).path == "/consent"


async def test_deny_is_access_denied_at_the_redirect_uri_and_nothing_is_remembered(server):
    await add_user(server)
    app = await third_party(server)
    flow, location = await to_consent(server, app)
    back = await answer(server, location, "deny")
    assert back.startswith(REDIRECT)
    told = query_of(back)
    assert told["error"] == "access_denied" and told["state"] == flow.state and "code" not in told
    assert told["iss"] == provider_of(server).settings.issuer
    sub = (await provider_of(server).store.users.find_user("alice")).sub
    assert await provider_of(server).store.consents.list_consents(sub) == []


async def test_the_page_is_bound_to_its_browser_once_and_to_a_real_decision(server):
    await add_user(server)
    app = await third_party(server)
    _, location = await to_consent(server, app)
    request_id, csrf, _ = await consent_page(server, location)
    for form in ({"csrf_token": "forged", "decision": "allow"}, {"csrf_token": csrf, "decision": "maybe"}):
        resp = await server.post("/consent", data={"request": request_id, **form}, allow_redirects=False)
        assert resp.status == 400 and is_error_page(await resp.text())
    resp = await server.post("/consent", data={"request": request_id, "csrf_token": csrf, "decision": "allow"},
                             headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert resp.status == 403  # cross-site: refused before anything is read
    resp = await server.post("/consent", data={"request": request_id, "csrf_token": csrf, "decision": "allow"},
                             allow_redirects=False)
    assert resp.status == 303 and "code" in query_of(resp.headers["Location"])
    resp = await server.post("/consent", data={"request": request_id, "csrf_token": csrf, "decision": "allow"},
                             allow_redirects=False)
    assert resp.status == 400  # answered once
    server.session.cookie_jar.clear()  # another browser: the page is not its
    resp = await server.get(location)
    assert resp.status == 400 and is_error_page(await resp.text())


async def test_withdrawing_on_the_account_page_ends_the_clients_refresh_tokens(server):
    await add_user(server)
    app = await third_party(server)
    tokens = await allowed_tokens(server, app)
    html = await (await server.get("/account")).text()
    assert 'id="consent-list"' in html and "Photo Printer" in html and 'href="#consents"' in html
    resp = await server.post("/account", data={"csrf_token": csrf_of(html), "action": "consent-revoke",
                                               "client": app.client_id})
    html = await resp.text()
    assert resp.status == 200 and 'id="consent-none"' in html and "Withdrawn" in html
    resp = await server.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": tokens["refresh_token"]})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    _, location = await to_consent(server, app)  # asked again
    assert urlsplit(location).path == "/consent"


async def test_the_cli_lists_and_revokes_a_users_consents(server, settings):
    await add_user(server)
    app = await third_party(server)
    tokens = await allowed_tokens(server, app, scope="openid offline_access")
    env = {"TOKENSRV_REDIS_URL": settings.redis_url}
    listed = run_cli("user", "consents", "alice", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [(c["client_id"], c["scopes"]) for c in json.loads(listed.stdout)] == [
        (app.client_id, "offline_access openid")]
    revoked = run_cli("user", "consents", "alice", "--revoke", app.client_id, "--json", env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["refresh_families_ended"] == 1
    resp = await server.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": tokens["refresh_token"]})
    assert resp.status == 400
    again = run_cli("user", "consents", "alice", "--revoke", app.client_id, env=env)
    assert again.returncode != 0 and again.stderr.count("\n") == 1 and "has not allowed" in again.stderr
    assert json.loads(run_cli("user", "consents", "alice", "--json", env=env).stdout) == []


async def test_consent_required_is_an_operators_choice_and_not_for_a_first_party_client(server):
    refused = run_cli("client", "add", "--id", "x", "--redirect-uri", REDIRECT, "--first-party", "--consent",
                      "required", env={"TOKENSRV_REDIS_URL": provider_of(server).settings.redis_url})
    assert refused.returncode != 0 and "--consent" in refused.stderr and "Traceback" not in refused.stderr
    bad = run_cli("client", "add", "--id", "x", "--consent", "maybe")
    assert bad.returncode == 2 and "only value is 'required'" in bad.stderr
    resp = await server.post("/oauth2/register", json={"redirect_uris": [REDIRECT], "consent_required": False},
                             headers={"Authorization": "Bearer " + (await admin.mint_initial_token(
                                 provider_of(server), 600, 1))["initial_access_token"]})
    body = await resp.json()  # not the registrant's to decide: ignored, the client asks all the same
    client = await provider_of(server).store.clients.get_client(body.get("client_id", ""))
    assert client is not None and client.asks_consent


async def test_a_request_parked_for_the_second_step_cannot_be_answered_on_the_consent_page(server):
    """A step-up to mfa parks the request with the session's user too: the consent page must not
    turn it into a code without the second factor."""
    await add_user(server)
    await to_consent(server, await add_app(server, "own", first_party=True))  # a password session
    await admin.add_client(provider_of(server), "strict", ClientMetadata(
        public=True, redirect_uris=(REDIRECT,), scope=SCOPES, require_mfa=True))
    _, resp = await begin(server, App("strict", None, REDIRECT))
    location = resp.headers["Location"]
    assert urlsplit(location).path == "/login/two-step", location
    request_id = query_of(location)["request"]
    html = await (await server.get("/account")).text()
    for method in ("get", "post"):
        resp = await server.request(method, "/consent", params={"request": request_id} if method == "get" else None,
                                    data={"request": request_id, "csrf_token": csrf_of(html), "decision": "allow"}
                                    if method == "post" else None, allow_redirects=False)
        assert resp.status == 400 and is_error_page(await resp.text())


@pytest.mark.parametrize("logged_out", [False, True])
async def test_an_unanswered_consent_request_is_no_sign_in(server, logged_out):
    """The consent request waits for the signed-in user's answer: on the second-factor page, the
    passkey sign-in or the password form it is refused (it would start a session as that user, or
    as whoever's password is typed), before and after a logout."""
    await add_user(server)
    await add_user(server, "bob", email="bob@example.org")
    app = await third_party(server)
    _, location = await to_consent(server, app)
    request_id, csrf, _ = await consent_page(server, location)
    if logged_out:
        html = await (await server.get("/oauth2/logout")).text()
        resp = await server.post("/oauth2/logout", data={"csrf_token": csrf_of(html)}, allow_redirects=False)
        assert resp.status < 400 and cookie(server, "tokensrv_session") in (None, "")
    ids = {"request": request_id, "csrf_token": csrf}
    for method, data in (("get", None), ("post", {**ids, "code": "123456"})):
        resp = await server.request(method, "/login/two-step", params={"request": request_id}, data=data,
                                    allow_redirects=False)
        assert resp.status == 400 and is_error_page(await resp.text())
    await assert_400(await post_json(server, "/login/passkey/options", ids))
    await assert_400(await post_json(server, "/login/passkey", {**ids, "credential": {}}))
    resp = await server.get("/login", params={"request": request_id}, allow_redirects=False)
    assert resp.status == 400 and is_error_page(await resp.text())
    resp = await server.post("/login", data={**ids, "username": "bob", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 400 and is_error_page(await resp.text())
    if not logged_out:  # still the signed-in user's to answer
        assert "code" in query_of(await answer(server, location, "allow"))


async def test_withdrawing_ends_families_beyond_the_index_and_codes_not_yet_redeemed(server, clock):
    """What the account page cannot find dies too: a family the per-user index has forgotten (past
    its latest 100), and a code issued before the withdrawal; allowing again revives neither."""
    await add_user(server)
    app = await third_party(server)
    p = provider_of(server)
    sub = (await p.store.users.find_user("alice")).sub
    forgotten = await allowed_tokens(server, app)
    family_id = (await p.store.refresh.user_family_ids(sub, p.now()))[0]
    await p.store.refresh.unindex_family(sub, family_id)  # as the index bound does to the oldest
    flow, location = await to_consent(server, app)  # within the consent: a code, no page
    code = query_of(location)["code"]
    html = await (await server.get("/account")).text()
    resp = await server.post("/account", data={"csrf_token": csrf_of(html), "action": "consent-revoke",
                                               "client": app.client_id})
    assert resp.status == 200 and "Withdrawn" in await resp.text()
    status, body = await redeem(server, flow, code)
    assert status == 400 and body["error"] == "invalid_grant", body
    clock.advance(1)
    again = await allowed_tokens(server, app)  # allowed again: a new family works, the old one not
    for tokens, expected in ((forgotten, 400), (again, 200)):
        resp = await server.post("/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": tokens["refresh_token"]})
        assert resp.status == expected, await resp.text()


async def test_the_page_says_the_client_keeps_access_exactly_when_it_gets_refresh_tokens(server):
    """A refresh token is issued whenever the client has the refresh_token grant (offline_access
    or not): the page says it keeps access then, and never when it has not that grant."""
    await add_user(server)
    for client_id, grants, scope, keeps in (("refresher", ("authorization_code", "refresh_token"), "openid", True),
                                            ("codeonly", ("authorization_code",), "openid offline_access", False)):
        app = await third_party(server, client_id, grant_types=grants)
        flow, location = await to_consent(server, app, scope=scope)
        _, _, html = await consent_page(server, location)
        assert ('id="consent-keeps-access"' in html) is keeps and ("Keep access" in html) is keeps, client_id
        status, tokens = await redeem(server, flow, query_of(await answer(server, location, "allow"))["code"])
        assert status == 200 and ("refresh_token" in tokens) is keeps, tokens


async def test_a_client_removed_and_added_again_with_its_id_asks_again(server, clock):
    """A consent is to the client as it was when allowed: one given before the client with that
    id was added (to one removed since) does not count, and allowing the new one is remembered."""
    await add_user(server)
    await allowed_tokens(server, await third_party(server))
    await admin.remove_client(provider_of(server), "thirdapp")
    clock.advance(1)
    app = await third_party(server)
    _, location = await to_consent(server, app, scope="openid")
    assert urlsplit(location).path == "/consent", location
    await answer(server, location, "allow")
    _, location = await to_consent(server, app, scope="openid")  # remembered now
    assert location.startswith(REDIRECT) and "code" in query_of(location)


async def test_the_page_names_where_it_sends_back_and_that_a_registered_client_is_unverified(server):
    """The name is the client's own choice: the page shows the redirect URI's host too, and for a
    client that registered itself, that this server did not verify it (an operator's client: no such note)."""
    await add_user(server)
    token = (await admin.mint_initial_token(provider_of(server), 600, 1))["initial_access_token"]
    resp = await server.post("/oauth2/register", json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Your Bank"},
        headers={"Authorization": "Bearer " + token})
    registered = App((await resp.json())["client_id"], None, REDIRECT)
    host = urlsplit(REDIRECT).hostname
    for app, unverified in ((registered, True), (await third_party(server), False)):
        _, location = await to_consent(server, app)
        _, _, html = await consent_page(server, location)
        assert f'id="consent-redirect-host">{host}<' in html, app.client_id
        assert ('not verified by 127.0.0.1' in html) is unverified, app.client_id
