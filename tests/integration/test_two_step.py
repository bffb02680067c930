"""TOTP as a second factor over HTTP (the test client as the browser, the server's clock injected):
enrolment on /account, the code step after the password, no replay, throttling, recovery codes,
removal, the policy, and the amr/acr claims of the tokens."""
from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt

from tests.helpers.app import provider_of
from tests.helpers.sso import PASSWORD, add_app, add_user, begin, csrf_of, login_page, query_of, redeem, submit
from tests.helpers.two_step import code_at, enrol, recovery_codes_on, secret_on, signed_in_account
from tokensrv.admin import operations as admin
from tokensrv.oauth.own_tokens import read_own_jwt


async def id_token_claims(client, token: str) -> dict:
    """Checked by PyJWT against the published JWKS, as an application would."""
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    key = pyjwt.PyJWKSet.from_dict(jwks)[pyjwt.get_unverified_header(token)["kid"]]
    return pyjwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False},
                        leeway=120)  # the server's clock is the test's, moved on by a step or two


async def password_step(client, app):
    """Authorize (prompt=login: past the SSO session) and the password: the redirect to the code
    step (flow, request id, csrf)."""
    flow, resp = await begin(client, app, prompt="login")
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login/two-step?"), resp.headers
    assert (await client.get(resp.headers["Location"])).status == 200
    return flow, request_id, csrf


async def code_step(client, request_id, csrf, code="", recovery=""):
    return await client.post("/login/two-step", data={"request": request_id, "csrf_token": csrf, "code": code,
                                                      "recovery": recovery}, allow_redirects=False)


async def test_enrol_then_sign_in_with_a_code_and_the_claims_say_so(client, clock):
    app = await add_app(client)
    await add_user(client)
    secret, _ = await enrol(client, clock, app)
    flow, request_id, csrf = await password_step(client, app)

    resp = await code_step(client, request_id, csrf, "000000" if code_at(secret, clock()) != "000000" else "111111")
    assert resp.status == 200 and "That code is not right" in await resp.text()
    clock.advance(30)  # the enrolment's code has been used; the next step's is a new one
    resp = await code_step(client, request_id, csrf, code_at(secret, clock()))
    assert resp.status == 303, await resp.text()
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200, tokens
    id_claims = await id_token_claims(client, tokens["id_token"])
    assert id_claims["amr"] == ["pwd", "otp", "mfa"] and id_claims["acr"] == "urn:tokensrv:acr:mfa"
    access = read_own_jwt(provider_of(client), tokens["access_token"])
    assert access["amr"] == ["pwd", "otp", "mfa"] and access["acr"] == "urn:tokensrv:acr:mfa"


async def test_a_password_only_sign_in_says_pwd(client):
    app = await add_app(client)
    await add_user(client)
    flow, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf)
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200, tokens
    claims = await id_token_claims(client, tokens["id_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:tokensrv:acr:pwd"


async def test_a_code_is_accepted_once(client, clock):
    app = await add_app(client)
    await add_user(client)
    secret, _ = await enrol(client, clock, app)
    clock.advance(30)
    code = code_at(secret, clock())
    _, request_id, csrf = await password_step(client, app)
    assert (await code_step(client, request_id, csrf, code)).status == 303
    _, request_id, csrf = await password_step(client, app)
    resp = await code_step(client, request_id, csrf, code)  # same code, same window: refused
    assert resp.status == 200 and "That code is not right" in await resp.text()
    clock.advance(-30)  # an earlier step's code, still within the drift allowed: refused as well
    resp = await code_step(client, request_id, csrf, code_at(secret, clock()))
    assert resp.status == 200


async def test_wrong_codes_are_throttled(client, clock, settings):
    app = await add_app(client)
    await add_user(client)
    secret, _ = await enrol(client, clock, app)
    _, request_id, csrf = await password_step(client, app)
    right = code_at(secret, clock() + 30)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in (right, code_at(secret, clock()),
                                                                      code_at(secret, clock() - 30)))
    for _ in range(settings.login_max_failures):
        assert (await code_step(client, request_id, csrf, wrong)).status == 200
    resp = await code_step(client, request_id, csrf, wrong)
    assert resp.status == 429 and "Retry-After" in resp.headers
    clock.advance(30)
    resp = await code_step(client, request_id, csrf, right)  # even the right code waits
    assert resp.status == 429


async def test_a_recovery_code_works_once(client, clock):
    app = await add_app(client)
    await add_user(client)
    _, codes = await enrol(client, clock, app)
    _, request_id, csrf = await password_step(client, app)
    assert (await code_step(client, request_id, csrf, recovery=codes[3].upper())).status == 303
    _, request_id, csrf = await password_step(client, app)
    resp = await code_step(client, request_id, csrf, recovery=codes[3])
    assert resp.status == 200 and "was used already" in await resp.text()
    view = await admin.second_factor_view(provider_of(client), "alice")
    assert view["totp"] and view["recovery_codes_left"] == 9


async def test_removal_needs_a_code_or_the_password(client, clock):
    app = await add_app(client)
    await add_user(client)
    await enrol(client, clock, app)
    csrf = csrf_of(await (await client.get("/account")).text())
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "totp-remove", "code": ""})
    assert "turn two-step verification off" in await resp.text()
    assert (await admin.second_factor_view(provider_of(client), "alice"))["totp"]
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "totp-remove", "password": PASSWORD})
    assert 'id="totp-status">Off<' in await resp.text()
    assert not (await admin.second_factor_view(provider_of(client), "alice"))["totp"]


async def test_account_page_refuses_a_post_without_the_csrf_token_or_from_another_site(client, clock):
    app = await add_app(client)
    await add_user(client)
    csrf = await signed_in_account(client, app)
    resp = await client.post("/account", data={"csrf_token": "forged", "action": "totp-start"})
    assert resp.status == 400
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "totp-start"},
                             headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    assert await provider_of(client).store.mfa.get_setup((await provider_of(client).store.users.find_user(
        "alice")).sub) is None


async def test_account_page_without_a_session_goes_to_the_login_and_back(client):
    app = await add_app(client)
    await add_user(client)
    resp = await client.get("/account", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?request=")
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf)
    assert (resp.status, resp.headers["Location"]) == (303, "/account")
    del app


async def test_required_policy_enrols_after_the_password(make_client, settings, clock):
    client = await make_client(settings, mfa="required")
    app = await add_app(client)
    await add_user(client)
    flow, request_id, csrf = await password_step(client, app)
    html = await (await client.get("/login/two-step?request=" + request_id)).text()
    secret = secret_on(html)
    resp = await code_step(client, request_id, csrf, code_at(secret, clock()))
    assert resp.status == 200
    html = await resp.text()
    assert len(recovery_codes_on(html)) == 10
    location = unescape(re.search(r'id="continue" href="([^"]+)"', html).group(1))
    code = parse_qs(urlsplit(location).query)["code"][0]
    status, tokens = await redeem(client, flow, code)
    assert status == 200, tokens
    assert (await id_token_claims(client, tokens["id_token"]))["acr"] == "urn:tokensrv:acr:mfa"


async def test_mfa_reset_removes_the_factor_and_ends_sessions(client, clock):
    app = await add_app(client)
    await add_user(client)
    await enrol(client, clock, app)
    result = await admin.reset_second_factor(provider_of(client), "alice")
    assert result["removed"]
    resp = await client.get("/account", allow_redirects=False)
    assert resp.status == 303  # the session ended: sign in again
    clock.advance(1)
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf)
    assert resp.headers["Location"].startswith(app.redirect_uri)  # password only again (optional policy)


async def test_discovery_advertises_amr_and_acr(client, make_client, settings):
    doc = await (await client.get("/.well-known/openid-configuration")).json()
    assert doc["amr_values_supported"] == ["pwd", "otp", "hwk", "swk", "user", "mfa"]
    assert doc["acr_values_supported"] == ["urn:tokensrv:acr:pwd", "urn:tokensrv:acr:mfa"]
    off = await make_client(settings, mfa="off")
    doc = await (await off.get("/.well-known/openid-configuration")).json()
    assert doc["amr_values_supported"] == ["pwd"] and doc["acr_values_supported"] == ["urn:tokensrv:acr:pwd"]


async def test_introspection_tells_how_the_user_signed_in(client, clock):
    app = await add_app(client, "confidential", public=False)
    await add_user(client)
    secret, _ = await enrol(client, clock, app)
    clock.advance(30)
    flow, request_id, csrf = await password_step(client, app)
    resp = await code_step(client, request_id, csrf, code_at(secret, clock()))
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200, tokens
    resp = await client.post("/oauth2/introspect", data={"token": tokens["access_token"]}, headers=app.auth())
    answer = await resp.json()
    assert answer["active"] and answer["amr"] == ["pwd", "otp", "mfa"] and answer["acr"] == "urn:tokensrv:acr:mfa"


async def test_the_sign_in_for_the_account_page_says_what_it_is_for(client):
    resp = await client.get("/account")  # no session: to the login form, which says why
    assert resp.status == 200 and str(resp.url.path) == "/login"
    page = await resp.text()
    assert "to manage your account" in page and "to connect a device" not in page
