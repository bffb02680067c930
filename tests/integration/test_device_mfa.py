"""The device grant for a client that requires mfa (`client add --require-mfa`): a password-only
session cannot approve it; the device page leads it through the second step (enrolment here),
comes back with the code, and the tokens then carry mfa."""
from __future__ import annotations

from urllib.parse import urlsplit

import pyotp

from tests.helpers.app import provider_of
from tests.helpers.device import decide, poll, signed_in, start
from tests.helpers.sso import REDIRECT, add_user, csrf_of, query_of
from tests.helpers.step_up import MFA, code_step, id_token_claims, secret_on
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata


async def test_a_client_requiring_mfa_is_approved_only_after_the_second_step(client, clock):
    await add_user(client)
    await admin.add_client(provider_of(client), "tv", ClientMetadata(
        public=True, grant_types=("device_code",), scope=("openid",), require_mfa=True, redirect_uris=(REDIRECT,)))
    _, started = await start(client, "tv", scope="openid")
    await signed_in(client)  # the password alone
    status, html = await decide(client, started["user_code"], "approve")
    assert status == 303 and "approved" not in html.lower()
    status, answer = await poll(client, started["device_code"], "tv")
    assert status == 400 and answer["error"] == "authorization_pending"  # nothing was approved

    resp = await client.get(f"/device?user_code={started['user_code']}", allow_redirects=False)
    location = resp.headers["Location"]
    assert resp.status == 303 and urlsplit(location).path == "/login/two-step", location
    html = await (await client.get(location)).text()
    assert 'name="password"' not in html  # the password stands: the second step only
    resp = await code_step(client, query_of(location)["request"], csrf_of(html),
                           pyotp.TOTP(secret_on(html)).at(clock()))
    assert resp.status == 200 and "recovery" in (await resp.text()).lower()

    status, _ = await decide(client, started["user_code"], "approve")
    assert status == 200
    clock.advance(10)
    status, tokens = await poll(client, started["device_code"], "tv")
    assert status == 200, tokens
    claims = await id_token_claims(client, tokens["id_token"])
    assert "mfa" in claims["amr"] and claims["acr"] == MFA
