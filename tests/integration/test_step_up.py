"""Step-up over HTTP (the test client as the browser, the server's clock injected): acr_values and
an essential acr in the `claims` request asking only for the second factor, max_age and
prompt=login asking only for the same user's password, prompt=none, a client that requires mfa,
a malformed `claims`, and amr/acr/auth_time kept by refreshed tokens (read by PyJWT)."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pyotp
import pytest

from tests.helpers.app import provider_of
from tests.helpers.sso import REDIRECT, add_app, add_user, begin, csrf_of, query_of, redeem, submit
from tests.helpers.step_up import MFA, PWD, code_step, enrol_totp, id_token_claims, password_session
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata


def essential(*values: str) -> str:
    return json.dumps({"id_token": {"acr": {"essential": True, "values": list(values)}}})


async def second_step_page(client, location: str) -> tuple[str, str, str]:
    """The page a step-up to mfa leads to: (request id, csrf, html); never the password form."""
    assert urlsplit(location).path == "/login/two-step", location
    resp = await client.get(location)
    html = await resp.text()
    assert resp.status == 200 and 'name="password"' not in html, html
    return query_of(location)["request"], csrf_of(html), html


async def test_acr_values_mfa_on_a_password_session_asks_for_the_code_only(client, clock):
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    secret = await enrol_totp(client, clock)
    clock.advance(60)
    flow, resp = await begin(client, app, acr_values=f"urn:example:gold {MFA}")  # unknown first: ignored
    request_id, csrf, _ = await second_step_page(client, resp.headers["Location"])
    resp = await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    assert resp.status == 303 and resp.headers["Location"].startswith(REDIRECT), await resp.text()
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200, tokens
    claims = await id_token_claims(client, tokens["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == MFA
    assert claims["auth_time"] == int(clock())  # a step-up is an authentication: its time

    # the session is raised: the next request for mfa is answered at once
    _, resp = await begin(client, app, acr_values=MFA)
    assert resp.headers["Location"].startswith(REDIRECT)


async def test_essential_mfa_leads_a_user_without_a_factor_through_enrolment(client, clock):
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    _, resp = await begin(client, app, claims=essential(MFA))
    request_id, csrf, html = await second_step_page(client, resp.headers["Location"])
    secret = html.split('id="totp-secret">', 1)[1].split("<", 1)[0].replace(" ", "")
    resp = await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    assert resp.status == 200 and "recovery" in (await resp.text()).lower()  # shown once, then on
    assert await provider_of(client).store.mfa.get_second_factor(
        (await provider_of(client).store.users.find_user("alice")).sub) is not None


async def test_an_essential_acr_that_cannot_be_met_is_the_oidc_error(make_client, settings):
    client = await make_client(settings, mfa="off")
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    for claims in (essential(MFA), essential("urn:example:gold")):
        flow, resp = await begin(client, app, claims=claims)
        answer = query_of(resp.headers["Location"])
        assert resp.headers["Location"].startswith(REDIRECT)
        assert answer["error"] == "unmet_authentication_requirements" and answer["state"] == flow.state
    # voluntary: the best there is (a password), no error
    flow, resp = await begin(client, app, acr_values=MFA)
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200 and (await id_token_claims(client, tokens["id_token"]))["acr"] == PWD


async def test_an_essential_lower_acr_is_told_as_asked(client, clock):
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    secret = await enrol_totp(client, clock)
    flow, resp = await begin(client, app, acr_values=MFA)
    request_id, csrf, _ = await second_step_page(client, resp.headers["Location"])
    await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    flow, resp = await begin(client, app, claims=essential(PWD))  # §5.5.1.1: one of the values asked
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    claims = await id_token_claims(client, tokens["id_token"])
    assert status == 200 and claims["acr"] == PWD and claims["amr"] == ["pwd", "otp", "mfa"]


@pytest.mark.parametrize("params", [{"max_age": "0"}, {"prompt": "login"}])
async def test_max_age_and_prompt_login_ask_the_same_users_password(client, clock, params):
    app = await add_app(client)
    await add_user(client)
    await add_user(client, "bob", email="bob@example.org")
    await password_session(client, app)  # max_age=0 within the second of the sign-in: still asks
    flow, resp = await begin(client, app, **params)
    location = resp.headers["Location"]
    assert urlsplit(location).path == "/login"
    html = await (await client.get(location)).text()
    assert "Confirm it" in html and 'value="alice"' in html and "readonly" in html, html
    request_id, csrf = query_of(location)["request"], csrf_of(html)
    resp = await submit(client, request_id, csrf, "bob")  # right password, another user: refused
    assert resp.status == 200 and "sign out first" in await resp.text()
    resp = await submit(client, request_id, csrf, "alice")
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200 and (await id_token_claims(client, tokens["id_token"]))["auth_time"] == int(clock())


async def test_a_later_max_age_is_met_by_the_sign_in_it_asked_for(client, clock):
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    clock.advance(30)
    _, resp = await begin(client, app, max_age="10")
    assert urlsplit(resp.headers["Location"]).path == "/login"
    _, resp = await begin(client, app, max_age="60")  # 30 s old: fresh enough
    assert resp.headers["Location"].startswith(REDIRECT)


async def test_prompt_none_with_a_step_up_needed_is_refused(client, clock):
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    _, resp = await begin(client, app, acr_values=MFA, prompt="none")  # nothing enrolled yet
    assert query_of(resp.headers["Location"])["error"] == "interaction_required"
    await enrol_totp(client, clock)
    _, resp = await begin(client, app, acr_values=MFA, prompt="none")
    assert query_of(resp.headers["Location"])["error"] == "login_required"
    _, resp = await begin(client, app, max_age="0", prompt="none")
    clock.advance(1)
    assert query_of(resp.headers["Location"])["error"] == "login_required"


async def test_a_client_requiring_mfa_gets_the_second_step(client, clock):
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    await admin.add_client(provider_of(client), "strict", ClientMetadata(
        public=True, redirect_uris=(REDIRECT,), scope=("openid",), require_mfa=True))
    strict = app.__class__("strict", None, REDIRECT)
    _, resp = await begin(client, strict, scope="openid")
    _, _, html = await second_step_page(client, resp.headers["Location"])
    assert 'id="totp-secret"' in html  # none enrolled: enrolment first
    shown = await admin.get_client(provider_of(client), "strict")
    assert admin.client_view(shown)["require_mfa"] is True


@pytest.mark.parametrize("claims", [
    "{not json", "[]", '{"id_token": []}', '{"id_token": {"acr": 5}}',
    '{"id_token": {"acr": {"essential": "yes"}}}', '{"userinfo": {"email": {"values": "a"}}}',
    json.dumps({"id_token": {"x" * 5000: None}}), '{"id_token": {"acr": {"value": [[[[[[1]]]]]]}}}',
])
async def test_a_malformed_claims_parameter_is_invalid_request(client, claims):
    app = await add_app(client)
    flow, resp = await begin(client, app, claims=claims)
    answer = query_of(resp.headers["Location"])
    assert answer["error"] == "invalid_request" and "claims" in answer["error_description"], answer
    assert answer["state"] == flow.state


async def test_refreshed_tokens_keep_amr_acr_and_auth_time(client, clock):
    app = await add_app(client, "confidential", public=False)
    await add_user(client)
    await password_session(client, app)
    secret = await enrol_totp(client, clock)
    flow, resp = await begin(client, app, acr_values=MFA)
    request_id, csrf, _ = await second_step_page(client, resp.headers["Location"])
    resp = await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    signed_at = int(clock())
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200, tokens
    clock.advance(120)
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": tokens["refresh_token"]}, headers=app.auth())
    refreshed = await resp.json()
    assert resp.status == 200, refreshed
    claims = await id_token_claims(client, refreshed["id_token"])
    assert (claims["amr"], claims["acr"], claims["auth_time"]) == (["pwd", "otp", "mfa"], MFA, signed_at)
    resp = await client.post("/oauth2/introspect", data={"token": refreshed["access_token"]}, headers=app.auth())
    answer = await resp.json()
    assert answer["amr"] == ["pwd", "otp", "mfa"] and answer["acr"] == MFA and answer["auth_time"] == signed_at


async def test_a_device_approved_by_an_mfa_session_gets_its_amr(client, clock):
    app = await add_app(client)
    await add_user(client)
    await admin.add_client(provider_of(client), "tv", ClientMetadata(
        public=True, grant_types=("device_code", "refresh_token"), scope=("openid",)))
    await password_session(client, app)
    secret = await enrol_totp(client, clock)
    _, resp = await begin(client, app, acr_values=MFA)
    request_id, csrf, _ = await second_step_page(client, resp.headers["Location"])
    await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    started = await (await client.post("/oauth2/device_authorization", data={"client_id": "tv",
                                                                             "scope": "openid"})).json()
    html = await (await client.get("/device")).text()
    resp = await client.post("/device", data={"csrf_token": csrf_of(html), "user_code": started["user_code"],
                                              "action": "approve"})
    assert resp.status == 200
    clock.advance(10)
    resp = await client.post("/oauth2/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                                    "device_code": started["device_code"], "client_id": "tv"})
    tokens = await resp.json()
    assert resp.status == 200, tokens
    claims = await id_token_claims(client, tokens["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == MFA
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": "tv",
                                                    "refresh_token": tokens["refresh_token"]})
    assert (await id_token_claims(client, (await resp.json())["id_token"]))["amr"] == ["pwd", "otp", "mfa"]
