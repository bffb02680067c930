"""A token that is too long or malformed is just not a valid token: introspection answers
`{"active": false}` (RFC 7662 §2.2), revocation 200 (RFC 7009 §2.2), a grant `invalid_grant`
(RFC 6749 §5.2), userinfo `invalid_token` (RFC 6750 §3.1). (A missing one stays `invalid_request`,
and a body past the size limit 413: test_introspection, test_revocation, test_token_endpoint.)"""
from __future__ import annotations

from tests.helpers import sso as sso_helpers
from tests.helpers.oauth import (
    add_app,
    add_client,
    add_user,
    introspect,
    login,
    post,
    refresh,
)

BODY_LIMIT = 64 * 1024


def bad_tokens(real: str) -> list[str]:
    """Past the per-parameter limit (4096), past a JWT's (8192), near the body limit; malformed."""
    return ["x" * 4097, real + "A" * 5000, "A" * 9000, "A" * (BODY_LIMIT - 200),
            real[:-1], real + ".x", "..", "%00"]


async def setup(client):
    app = await add_app(client)
    await add_user(client)
    rs = await add_client(client, "rs")
    return app, rs, await login(client, app, scope="read")


async def test_introspecting_a_long_or_malformed_token_says_inactive(client):
    _, rs, issued = await setup(client)
    for real in (issued["access_token"], issued["refresh_token"]):
        for value in bad_tokens(real):
            status, body, _ = await post(client, "/oauth2/introspect", {"token": value}, rs.basic)
            assert (status, body) == (200, {"active": False}), (len(value), body)


async def test_revoking_a_long_or_malformed_token_is_200_and_revokes_nothing(client):
    app, rs, issued = await setup(client)
    for real in (issued["access_token"], issued["refresh_token"]):
        for value in bad_tokens(real):
            status, body, _ = await post(client, "/oauth2/revoke", {"token": value}, app.basic)
            assert status == 200, (len(value), body)
    assert (await introspect(client, rs, issued["access_token"]))["active"] is True
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 200


async def test_refreshing_with_a_long_or_malformed_token_is_invalid_grant(client):
    app, _, issued = await setup(client)
    for value in bad_tokens(issued["refresh_token"]):
        status, body, _ = await refresh(client, app, value)
        assert (status, body["error"]) == (400, "invalid_grant"), (len(value), body)
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 200  # refusals spent nothing


async def test_redeeming_a_long_or_malformed_code_is_invalid_grant_and_spends_nothing(client):
    app = await sso_helpers.add_app(client)
    await sso_helpers.add_user(client)
    flow, answer = await sso_helpers.sign_in(client, app)
    for value in bad_tokens(answer["code"]):
        status, body = await sso_helpers.redeem(client, flow, value)
        assert (status, body["error"]) == (400, "invalid_grant"), (len(value), body)
    assert (await sso_helpers.redeem(client, flow, answer["code"]))[0] == 200


async def test_userinfo_with_a_long_or_malformed_form_token_is_invalid_token(client):
    _, _, issued = await setup(client)
    for value in bad_tokens(issued["access_token"]):
        resp = await client.post("/oauth2/userinfo", data={"access_token": value})
        assert (resp.status, (await resp.json())["error"]) == (401, "invalid_token"), len(value)
        assert "WWW-Authenticate" in resp.headers
