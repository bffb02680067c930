"""Pushed authorization requests (RFC 9126): push, then authorize with client_id and request_uri,
through the login page and on an SSO session; and the attacks: a request_uri reused, used by
another client, expired; a client that must push going to /oauth2/authorize directly."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.assertion import assertion_form, claims_for, new_key, public_jwks, sign
from tests.helpers.par import PAR, authorize_pushed, log_in_at, push
from tests.helpers.sso import (
    REDIRECT,
    App,
    add_app,
    add_user,
    is_error_page,
    query_of,
    redeem,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.store import keyspace


@pytest.fixture
async def confidential(client):
    await add_user(client)
    return await add_app(client, "rp", public=False)


async def test_push_then_authorize_log_in_and_exchange(client, confidential, redis):
    status, body, flow, headers = await push(client, confidential)
    assert status == 201, body
    assert body["expires_in"] == 60 and body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert headers["Cache-Control"] == "no-store"
    [key] = await redis.keys(keyspace.pushed_request("*"))
    assert 0 < await redis.ttl(key) <= 60
    answer = await log_in_at(client, await authorize_pushed(client, "rp", body["request_uri"]))
    assert answer["state"] == "pushed-state" and answer["iss"] == provider_of(client).settings.issuer
    status, tokens = await redeem(client, flow, answer["code"])
    assert status == 200 and {"access_token", "refresh_token", "id_token"} <= tokens.keys()


async def test_a_public_client_pushes_with_its_client_id_and_the_sso_session_answers(client, confidential):
    spa = await add_app(client, "spa")
    status, body, _, _ = await push(client, confidential)
    await log_in_at(client, await authorize_pushed(client, "rp", body["request_uri"]))  # the session begins
    status, body, flow, _ = await push(client, spa)
    assert status == 201, body
    resp = await authorize_pushed(client, "spa", body["request_uri"])
    assert resp.status == 303 and resp.headers["Location"].startswith(REDIRECT + "?")  # no login page
    status, tokens = await redeem(client, flow, query_of(resp.headers["Location"])["code"])
    assert status == 200, tokens


async def test_other_parameters_on_the_authorize_url_are_ignored(client, confidential):
    status, body, flow, _ = await push(client, confidential)
    resp = await authorize_pushed(client, "rp", body["request_uri"], redirect_uri="https://evil.example/cb",
                                  state="forged", scope="openid email", response_type="token")
    answer = await log_in_at(client, resp)
    assert answer["state"] == "pushed-state"
    status, tokens = await redeem(client, flow, answer["code"])
    assert status == 200 and tokens["scope"] == "openid profile"


async def test_a_request_uri_works_once(client, confidential):
    _, body, _, _ = await push(client, confidential)
    first = await authorize_pushed(client, "rp", body["request_uri"])
    assert first.status == 303
    again = await authorize_pushed(client, "rp", body["request_uri"])
    assert again.status == 400 and is_error_page(await again.text())


async def test_a_request_uri_of_another_client_is_refused_and_stays_its_owners(client, confidential):
    await add_app(client, "other")
    _, body, _, _ = await push(client, confidential)
    stolen = await authorize_pushed(client, "other", body["request_uri"])
    assert stolen.status == 400 and is_error_page(await stolen.text())
    assert (await authorize_pushed(client, "rp", body["request_uri"])).status == 303


async def test_an_expired_or_made_up_request_uri_is_refused(client, clock, confidential):
    _, body, _, _ = await push(client, confidential)
    clock.advance(60)
    expired = await authorize_pushed(client, "rp", body["request_uri"])
    assert expired.status == 400 and is_error_page(await expired.text())
    made_up = await authorize_pushed(client, "rp", "urn:ietf:params:oauth:request_uri:guess")
    assert made_up.status == 400 and is_error_page(await made_up.text())


async def test_a_client_that_must_push_cannot_authorize_directly(client):
    app = await add_app(client, "strict", require_par=True)
    resp = await client.get("/oauth2/authorize", params={
        "client_id": "strict", "response_type": "code", "redirect_uri": REDIRECT, "state": "s1",
        "code_challenge": "c" * 43, "code_challenge_method": "S256"}, allow_redirects=False)
    assert resp.status == 303
    answer = query_of(resp.headers["Location"])
    assert answer["error"] == "invalid_request" and answer["state"] == "s1" and "code" not in answer
    status, body, _, _ = await push(client, app)
    assert status == 201
    assert (await authorize_pushed(client, "strict", body["request_uri"])).status == 303


async def test_the_server_wide_switch_requires_pushing_and_is_advertised(make_client, settings):
    client = await make_client(settings, require_par=True)
    meta = await (await client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["require_pushed_authorization_requests"] is True
    await add_app(client, "web")
    resp = await client.get("/oauth2/authorize", params={
        "client_id": "web", "response_type": "code", "code_challenge": "c" * 43,
        "code_challenge_method": "S256"}, allow_redirects=False)
    assert query_of(resp.headers["Location"])["error"] == "invalid_request"


@pytest.mark.parametrize(("params", "status", "error"), [
    ({"redirect_uri": "https://evil.example/cb"}, 400, "invalid_request"),
    ({"response_type": "token"}, 400, "unsupported_response_type"),
    ({"scope": "openid admin"}, 400, "invalid_scope"),
    ({"code_challenge_method": "plain"}, 400, "invalid_request"),
    ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, 400, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, 400, "request_not_supported"),
])
async def test_pushed_requests_are_checked_like_authorization_requests(client, params, status, error):
    spa = await add_app(client, "spa")
    got, body, _, _ = await push(client, spa, **params)
    assert (got, body["error"]) == (status, error)


async def test_pushing_needs_client_authentication(client, confidential):
    got, body, _, _ = await push(client, confidential, headers={})  # a confidential client without its secret
    assert (got, body["error"]) == (401, "invalid_client")
    spa = await add_app(client, "spa")
    got, body, _, _ = await push(client, spa, code_challenge=None, code_challenge_method=None)
    assert (got, body["error"]) == (400, "invalid_request")  # a public client must use PKCE


async def test_prompt_none_without_a_session_goes_back_to_the_pushed_redirect_uri(client, confidential):
    _, body, _, _ = await push(client, confidential, prompt="none")
    resp = await authorize_pushed(client, "rp", body["request_uri"])
    answer = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    assert answer["error"] == "login_required" and answer["state"] == "pushed-state"


async def test_a_private_key_jwt_client_pushes_with_an_assertion_for_the_par_endpoint(client):
    await add_user(client)
    key = new_key()
    await admin.add_client(provider_of(client), "signed", ClientMetadata(redirect_uris=(REDIRECT,),
                           grant_types=("authorization_code",), scope=("openid",),
                           token_endpoint_auth_method="private_key_jwt",
                           jwks=public_jwks(key)))
    issuer, now = provider_of(client).settings.issuer, provider_of(client).now()
    app = App("signed", None, REDIRECT)
    status, body, flow, _ = await push(client, app, scope="openid", client_id=None,
                                       **assertion_form(sign(key, claims_for("signed", issuer + PAR, now))))
    assert status == 201, body
    answer = await log_in_at(client, await authorize_pushed(client, "signed", body["request_uri"]))
    resp = await client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT,
        "code_verifier": flow.verifier,
        **assertion_form(sign(key, claims_for("signed", issuer + "/oauth2/token", now)))})
    assert resp.status == 200, await resp.text()
