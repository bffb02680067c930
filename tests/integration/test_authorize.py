"""/oauth2/authorize: redirect URI checks (error pages), §4.1.2.1 error redirects, PKCE, prompt,
max_age, SSO reuse across applications, RFC 9207 `iss`."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest

from tests.helpers.sso import (
    REDIRECT,
    add_app,
    add_user,
    authorize,
    begin,
    doomed_store,
    is_error_page,
    login_page,
    query_of,
    sign_in,
    submit,
)

ISSUER = "http://127.0.0.1:8080"


async def error_redirect(resp, app_redirect: str = REDIRECT) -> dict[str, str]:
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(app_redirect + "?")
    answer = query_of(location)
    assert answer["iss"] == ISSUER and "code" not in answer
    return answer


@pytest.mark.parametrize("params", [
    {},  # no client_id
    {"client_id": "nobody"},
    {"client_id": "web", "redirect_uri": "http://127.0.0.1:9000/other"},
    {"client_id": "web", "redirect_uri": REDIRECT + "/"},  # exact match only
    {"client_id": "web", "redirect_uri": REDIRECT + "?x=1"},
    {"client_id": "web", "redirect_uri": "not a uri"},
    {"client_id": "web", "redirect_uri": "https://evil.example/cb"},
])
async def test_unknown_client_or_unregistered_redirect_uri_gets_a_page_not_a_redirect(client, params):
    await add_app(client)
    resp = await client.get("/oauth2/authorize", params={"response_type": "code", **params},
                            allow_redirects=False)
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert resp.content_type == "text/html"
    assert is_error_page(await resp.text())


async def test_repeated_redirect_uri_gets_a_page(client):
    await add_app(client)
    resp = await client.get(f"/oauth2/authorize?client_id=web&redirect_uri={REDIRECT}&redirect_uri={REDIRECT}",
                            allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers


async def test_redirect_uri_may_be_omitted_only_when_one_is_registered(client):
    single = await add_app(client, "single")
    several = await add_app(client, "several", redirect_uris=(REDIRECT, "http://127.0.0.1:9001/cb"))
    challenge = "a" * 43
    common = {"response_type": "code", "code_challenge": challenge, "code_challenge_method": "S256"}
    resp = await client.get("/oauth2/authorize", params={"client_id": single.client_id, **common},
                            allow_redirects=False)
    assert resp.status == 303 and urlsplit(resp.headers["Location"]).path == "/login"
    resp = await client.get("/oauth2/authorize", params={"client_id": several.client_id, **common},
                            allow_redirects=False)
    assert resp.status == 400 and is_error_page(await resp.text())


@pytest.mark.parametrize(("params", "error"), [
    ({"response_type": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": "code id_token"}, "unsupported_response_type"),
    ({"scope": "openid admin"}, "invalid_scope"),
    ({"scope": 'openid "quoted"'}, "invalid_scope"),
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # public: PKCE required
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"code_challenge": "a" * 129}, "invalid_request"),
    ({"code_challenge": "a" * 42 + "+"}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),  # a method without a challenge
    ({"prompt": "select_account"}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"max_age": "soon"}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"request_uri": "https://client.example/req"}, "request_uri_not_supported"),
    ({"prompt": "none"}, "login_required"),
])
async def test_errors_after_the_redirect_uri_is_checked_go_back_to_the_client(client, params, error):
    app = await add_app(client)
    await add_user(client)
    flow, resp = await begin(client, app, **{k: v for k, v in params.items() if v is not None},
                             **{k: "" for k, v in params.items() if v is None})
    answer = await error_redirect(resp)
    assert answer["error"] == error
    assert answer["error_description"]
    assert answer["state"] == flow.state


STATE = "st-1"
BASE = [("client_id", "web"), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid"),
        ("state", STATE), ("nonce", "n-1"), ("code_challenge", "c" * 43), ("code_challenge_method", "S256")]


def changed(extra: list[tuple[str, str]] = (), drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The base request without the `drop` parameters, and with `extra` ones (repeats too) added."""
    return [(k, v) for k, v in BASE if k not in drop] + list(extra)


PAGE = "page"  # an unknown client or an unsound redirect URI: never redirected to (RFC 6749 §4.1.2.1)


# A fault in client_id or redirect_uri gets a page, whatever else is wrong. Once they are sound,
# every other fault goes back to the client, with iss (RFC 9207) and the state when there is
# exactly one to send back.
@pytest.mark.parametrize(("pairs", "answer", "state_back"), [
    (changed([("client_id", "web")]), PAGE, False),
    (changed([("client_id", "other")]), PAGE, False),
    (changed([("redirect_uri", REDIRECT)]), PAGE, False),
    (changed([("client_id", "w" * 5000)], drop=("client_id",)), PAGE, False),
    (changed([("redirect_uri", REDIRECT + "/" + "x" * 5000)], drop=("redirect_uri",)), PAGE, False),
    (changed([("state", "other")], drop=("client_id",)), PAGE, False),
    (changed([("response_type", "code")]), "invalid_request", True),
    (changed([("scope", "profile")]), "invalid_request", True),
    (changed([("nonce", "n-2")]), "invalid_request", True),
    (changed([("code_challenge", "d" * 43)]), "invalid_request", True),
    (changed([("code_challenge_method", "S256")]), "invalid_request", True),
    (changed([("prompt", "login"), ("prompt", "login")]), "invalid_request", True),
    (changed([("max_age", "1"), ("max_age", "2")]), "invalid_request", True),
    (changed([("ui_locales", "en"), ("ui_locales", "fr")]), "invalid_request", True),  # even one we ignore
    (changed([("nonce", "n" * 5000)], drop=("nonce",)), "invalid_request", True),
    (changed([("state", "other")]), "invalid_request", False),  # which one would we send? none
    (changed([("state", "s" * 5000)], drop=("state",)), "invalid_request", False),
    (changed([("response_type", "token")], drop=("response_type",)), "unsupported_response_type", True),
    (changed([("response_type", "code"), ("response_type", "token")], drop=("response_type",)),
     "invalid_request", True),
    (changed([("scope", "openid admin")], drop=("scope",)), "invalid_scope", True),
    (changed([("code_challenge_method", "plain")], drop=("code_challenge_method",)), "invalid_request", True),
    (changed(drop=("code_challenge", "code_challenge_method")), "invalid_request", True),
    (changed([("prompt", "select_account")]), "invalid_request", True),
    (changed([("max_age", "soon")]), "invalid_request", True),
])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_faults_in_the_client_or_redirect_uri_get_a_page_all_others_go_back_to_the_client(
        client, pairs, answer, state_back, method):
    await add_app(client)
    if method == "GET":
        resp = await client.get("/oauth2/authorize?" + urlencode(pairs), allow_redirects=False)
    else:
        resp = await client.post("/oauth2/authorize", data=urlencode(pairs), allow_redirects=False,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    if answer == PAGE:
        assert resp.status == 400 and "Location" not in resp.headers
        assert is_error_page(await resp.text())
        return
    redirected = await error_redirect(resp)
    assert redirected["error"] == answer and redirected["error_description"]
    assert redirected.get("state") == (STATE if state_back else None)


async def test_error_redirect_without_state_has_no_state(client):
    app = await add_app(client)
    resp = await authorize(client, app, response_type="token")
    answer = await error_redirect(resp)
    assert "state" not in answer


async def test_client_without_the_authorization_code_grant_is_unauthorized(client):
    app = await add_app(client, "svc", public=False, grant_types=("client_credentials",))
    _, resp = await begin(client, app)
    assert (await error_redirect(resp))["error"] == "unauthorized_client"


async def test_confidential_client_may_skip_pkce(client):
    app = await add_app(client, "conf", public=False)
    resp = await authorize(client, app, scope="openid")
    assert resp.status == 303 and urlsplit(resp.headers["Location"]).path == "/login"


async def test_success_carries_code_state_and_iss_and_keeps_the_redirect_uri_query(client):
    app = await add_app(client, redirect_uris=("http://127.0.0.1:9000/cb?tenant=a%20b",))
    await add_user(client)
    flow, answer = await sign_in(client, app)
    assert answer["state"] == flow.state
    assert answer["iss"] == ISSUER
    assert answer["tenant"] == "a b"
    assert len(answer["code"]) >= 43


async def test_a_second_application_completes_on_the_sso_session(client):
    app_a = await add_app(client, "app-a")
    app_b = await add_app(client, "app-b", redirect_uris=("http://127.0.0.1:9001/cb",))
    await add_user(client)
    await sign_in(client, app_a)
    flow, resp = await begin(client, app_b)
    assert resp.status == 303
    answer = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith("http://127.0.0.1:9001/cb?")
    assert answer["state"] == flow.state and answer["code"]


async def test_prompt_none_with_a_session_answers_without_the_login_page(client):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    _, resp = await begin(client, app, prompt="none")
    assert "code" in query_of(resp.headers["Location"])


async def test_prompt_login_forces_a_new_login_even_with_a_session(client):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    _, resp = await begin(client, app, prompt="login")
    assert urlsplit(resp.headers["Location"]).path == "/login"


async def test_max_age_asks_for_a_new_login_once_the_last_is_too_old(client, clock):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    clock.advance(100)
    _, resp = await begin(client, app, max_age="300")
    assert "code" in query_of(resp.headers["Location"])
    _, resp = await begin(client, app, max_age="60")
    assert urlsplit(resp.headers["Location"]).path == "/login"
    _, resp = await begin(client, app, max_age="60", prompt="none")
    assert query_of(resp.headers["Location"])["error"] == "login_required"


async def test_post_is_accepted_like_get(client):
    app = await add_app(client)
    resp = await client.post("/oauth2/authorize", data={
        "client_id": app.client_id, "redirect_uri": REDIRECT, "response_type": "code",
        "code_challenge": "b" * 43, "code_challenge_method": "S256"}, allow_redirects=False)
    assert resp.status == 303 and urlsplit(resp.headers["Location"]).path == "/login"


async def test_pending_request_is_kept_server_side_not_in_the_login_url(client):
    app = await add_app(client)
    await add_user(client)
    flow, resp = await begin(client, app, scope="openid profile")
    location = resp.headers["Location"]
    assert set(query_of(location)) == {"request"}
    assert flow.state not in location and "profile" not in location
    request_id, csrf = await login_page(client, location)
    resp = await submit(client, request_id, csrf)
    answer = query_of(resp.headers["Location"])
    assert answer["state"] == flow.state


async def test_store_down_fails_closed_with_a_page(make_client, settings, tmp_path):
    async with doomed_store(make_client, settings, tmp_path) as (client, store):
        app = await add_app(client)
        store.stop()
        resp = await authorize(client, app, code_challenge="c" * 43, code_challenge_method="S256")
        assert resp.status == 503
        html = await resp.text()
    assert is_error_page(html) and "temporarily_unavailable" in html
    assert "Traceback" not in html and "redis" not in html.lower()


async def test_pages_carry_the_security_headers(client):
    resp = await client.get("/oauth2/authorize", params={"client_id": "nobody"}, allow_redirects=False)
    headers = resp.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"  # nothing to other sites; Origin on our own posts
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


async def test_discovery_advertises_the_iss_parameter(client):
    doc = await (await client.get("/.well-known/openid-configuration")).json()
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_endpoint"] == ISSUER + "/oauth2/authorize"
    assert "none" in doc["token_endpoint_auth_methods_supported"]  # public clients with PKCE
    assert doc["prompt_values_supported"] == ["none", "login", "consent"]
    assert doc["response_types_supported"] == ["code"] and doc["response_modes_supported"] == ["query"]
