"""The authorization_code grant: PKCE, binding to client and redirect URI, single use with
revocation on replay (also under concurrency), expiry, and the tokens it issues (OIDC claims)."""
from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from tests.helpers.app import provider_of
from tests.helpers.sso import (
    REDIRECT,
    add_app,
    add_user,
    begin,
    login_page,
    query_of,
    redeem,
    sign_in,
    submit,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.own_tokens import read_own_jwt


async def refresh(client, app, token):
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                    **app.form()}, headers=app.auth())
    return resp.status, await resp.json()


async def userinfo_status(client, access_token):
    resp = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return resp.status


async def test_code_flow_issues_oidc_tokens(client):
    app = await add_app(client)
    user = await add_user(client)
    flow, answer = await sign_in(client, app)
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["scope"] == "openid profile email"
    p = provider_of(client)
    id_claims = read_own_jwt(p, body["id_token"], "jwt")
    access = read_own_jwt(p, body["access_token"])
    assert id_claims["iss"] == "http://127.0.0.1:8080" and id_claims["aud"] == app.client_id
    assert id_claims["sub"] == user["sub"] == access["sub"]
    assert id_claims["nonce"] == flow.nonce
    assert id_claims["sid"] == access["sid"]
    assert id_claims["auth_time"] == access["auth_time"] == p.now()
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert id_claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert {"iat", "exp"} <= id_claims.keys()
    found = await p.store.refresh.get_family(await _family_id(body["refresh_token"]))
    assert found is not None and found[0].sid == id_claims["sid"]


async def _family_id(refresh_token: str) -> str:
    from tokensrv.oauth.own_tokens import parse_refresh_token
    family = parse_refresh_token(refresh_token)
    assert family is not None
    return family


async def test_a_code_presented_twice_is_refused_and_its_tokens_revoked(client):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    status, first = await redeem(client, flow, answer["code"])
    assert status == 200
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert (await refresh(client, app, first["refresh_token"]))[0] == 400
    assert await userinfo_status(client, first["access_token"]) == 401


async def test_replay_revokes_the_access_token_even_without_a_refresh_token(client):
    app = await add_app(client, grant_types=("authorization_code",))
    await add_user(client)
    flow, answer = await sign_in(client, app)
    status, first = await redeem(client, flow, answer["code"])
    assert status == 200 and "refresh_token" not in first
    assert await userinfo_status(client, first["access_token"]) == 200
    assert (await redeem(client, flow, answer["code"]))[0] == 400
    assert await userinfo_status(client, first["access_token"]) == 401


async def test_concurrent_redemptions_never_both_win(client):
    app = await add_app(client)
    await add_user(client)
    for _ in range(5):
        flow, answer = await sign_in(client, app)
        results = await asyncio.gather(*(redeem(client, flow, answer["code"]) for _ in range(3)))
        winners = [body for status, body in results if status == 200]
        assert len(winners) <= 1
        assert sum(body.get("error") == "invalid_grant" for _, body in results) >= 2
        for body in winners:  # a replay came: whatever the winner got is revoked
            assert await userinfo_status(client, body["access_token"]) == 401
            assert (await refresh(client, app, body["refresh_token"]))[0] == 400


@pytest.mark.parametrize(("change", "error"), [
    ({"code_verifier": "x" * 43}, "invalid_grant"),  # wrong verifier
    ({"code_verifier": ""}, "invalid_grant"),  # missing verifier
    ({"code_verifier": "short"}, "invalid_request"),  # malformed
    ({"code_verifier": "a" * 42 + "/"}, "invalid_request"),
    ({"redirect_uri": "http://127.0.0.1:9000/other"}, "invalid_grant"),
    ({"redirect_uri": ""}, "invalid_grant"),  # it was in the authorization request
    ({"code": "made-up"}, "invalid_grant"),
    ({"code": ""}, "invalid_request"),
])
async def test_redemption_errors(client, change, error):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    status, body = await redeem(client, flow, change.pop("code", answer["code"]), **change)
    assert (status, body["error"]) == (400, error)


async def test_a_failed_redemption_spends_the_code(client):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    assert (await redeem(client, flow, answer["code"], code_verifier="y" * 43))[0] == 400
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_code_is_bound_to_its_client(client):
    app = await add_app(client)
    other = await add_app(client, "other")
    await add_user(client)
    flow, answer = await sign_in(client, app)
    stolen = type(flow)(other, flow.verifier, flow.state, flow.nonce)
    status, body = await redeem(client, stolen, answer["code"], redirect_uri=REDIRECT)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_code_expires(client, clock):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    clock.advance(provider_of(client).settings.auth_code_ttl)
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_redirect_uri_may_be_left_out_when_the_request_left_it_out(client):
    app = await add_app(client)
    await add_user(client)
    flow, resp = await begin(client, app, redirect_uri="")
    request_id, csrf = await login_page(client, resp.headers["Location"])
    answer = query_of((await submit(client, request_id, csrf)).headers["Location"])
    status, body = await redeem(client, flow, answer["code"], redirect_uri="")
    assert status == 200, body


async def test_confidential_client_without_pkce(client):
    app = await add_app(client, "conf", public=False)
    await add_user(client)
    flow, answer = await sign_in(client, app, code_challenge="", code_challenge_method="")
    status, body = await redeem(client, flow, answer["code"], code_verifier="")
    assert status == 200, body


async def test_a_verifier_for_a_code_without_challenge_is_refused(client):
    app = await add_app(client, "conf", public=False)
    await add_user(client)
    flow, answer = await sign_in(client, app, code_challenge="", code_challenge_method="")
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_confidential_client_must_authenticate(client):
    app = await add_app(client, "conf", public=False)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    resp = await client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT,
        "code_verifier": flow.verifier, "client_id": "conf"})
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_client_without_the_grant_is_unauthorized(client):
    app = await add_app(client, "svc", public=False, grant_types=("client_credentials",))
    resp = await client.post("/oauth2/token", data={"grant_type": "authorization_code", "code": "x"},
                             headers=app.auth())
    assert resp.status == 400 and (await resp.json())["error"] == "unauthorized_client"


async def test_a_user_disabled_before_redemption_gets_nothing(client):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    await admin.set_disabled(provider_of(client), "alice", True)
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_logout_before_redemption_spoils_the_code(client):
    app = await add_app(client)
    await add_user(client)
    flow, answer = await sign_in(client, app)
    _, tokens = await redeem(client, flow, answer["code"])
    flow, answer = await sign_in(client, app)  # a second code from the same session
    resp = await client.get("/oauth2/logout", params={"id_token_hint": tokens["id_token"]}, allow_redirects=False)
    assert resp.status == 200
    status, body = await redeem(client, flow, answer["code"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_without_openid_there_is_no_id_token(client):
    app = await add_app(client, scopes=("read",))
    await add_user(client)
    flow, answer = await sign_in(client, app, scope="read")
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200 and "id_token" not in body and body["scope"] == "read"
