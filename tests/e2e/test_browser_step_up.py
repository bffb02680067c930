"""Step-up in a real browser (headless Chromium driven by Playwright) against a real `tokensrv
serve`: from a password-only SSO session, prompt=login and max_age=0 ask for the password only
(the username fixed and shown), acr_values=mfa asks for the code only (no password field), an
essential acr that cannot be met comes back to the application as the OIDC error, and a client
added with --require-mfa gets the second step. The ID tokens are checked by PyJWT against the
published JWKS, as an application would.

Screenshots of the "Confirm it's you" page go to tmp_path, or to $TOKENSRV_SCREENSHOTS.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

import pyotp
from playwright.async_api import Page, expect

from tests.helpers.oauth import PASSWORD
from tests.helpers.party import Party, screenshots, shots_folder

MFA, MFA_ACR = ["pwd", "otp", "mfa"], "urn:tokensrv:acr:mfa"


async def confirm_password(page: Page, party: Party, params: dict[str, str], folder: Path | None = None) -> None:
    """The application asks again (prompt=login or max_age): the password alone, alice's."""
    await page.goto(party.url + "/login?" + urlencode(params))
    await expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    username = page.get_by_label("Username")
    await expect(username).to_have_value("alice")
    assert await username.get_attribute("readonly") is not None
    await expect(page.get_by_label("Password")).to_be_focused()
    if folder is not None:
        await screenshots(page, "confirm-it-is-you", folder)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()


async def test_step_up_from_a_password_session(start_server, party_for, browser, tmp_path):
    server = start_server()
    party, folder = await party_for(server), shots_folder(tmp_path)
    context = await browser.new_context()
    page = await context.new_page()

    # a password-only session
    await page.goto(party.url + "/login")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(party.url + "/callback?*")
    first = party.claims["auth_time"]
    assert party.claims["amr"] == ["pwd"]

    # prompt=login and max_age=0: the same user's password, nothing else
    for params in ({"prompt": "login"}, {"max_age": "0"}):
        await confirm_password(page, party, params, folder if "prompt" in params else None)
        await page.wait_for_url(party.url + "/callback?*")
        assert party.claims["amr"] == ["pwd"] and party.claims["auth_time"] >= first

    # an essential acr nobody can meet: the OIDC error at the application
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:example:gold"]}}})
    await page.goto(party.url + "/login?" + urlencode({"claims": claims}))
    await page.wait_for_url(party.url + "/callback?*")
    assert party.error == "unmet_authentication_requirements"

    # unknown acr values alone are ignored: the session answers at once
    await page.goto(party.url + "/login?acr_values=urn:example:gold")
    await page.wait_for_url(party.url + "/callback?*")
    assert party.claims["acr"] == "urn:tokensrv:acr:pwd"

    # TOTP enrolled on /account from another device (enrolling here would raise this session to
    # two-step); this browser's session is still password-only
    other = await browser.new_context()
    phone = await other.new_page()
    await phone.goto(server.url + "/account")
    await phone.get_by_label("Username").fill("alice")
    await phone.get_by_label("Password").fill(PASSWORD)
    await phone.get_by_role("button", name="Sign in").click()
    await phone.get_by_role("button", name="Set up two-step verification").click()
    await phone.get_by_text("Can't scan it? Type the key instead").click()
    totp = pyotp.TOTP((await phone.locator("#totp-secret").text_content() or "").replace(" ", "").strip())
    await phone.get_by_label("6-digit code").fill(totp.now())
    await phone.get_by_role("button", name="Turn on").click()
    await expect(phone.locator("#totp-status")).to_have_text("On")
    recovery = [c.strip() for c in await phone.locator("#recovery-codes code").all_text_contents()]
    await other.close()

    # acr_values=mfa: the code page only, no password
    await page.goto(party.url + "/login?" + urlencode({"acr_values": MFA_ACR}))
    await page.wait_for_url(server.url + "/login/two-step?*")
    assert await page.locator("input[type=password]").count() == 0
    await page.get_by_label("6-digit code").fill(totp.at(time.time() + 30))  # newer than the enrolment's
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(party.url + "/callback?*")
    assert (party.claims["amr"], party.claims["acr"]) == (MFA, MFA_ACR)
    await context.close()

    # a client that requires mfa: the second step whatever the session had
    strict = await party_for(server, "--require-mfa", client_id="strict", user=False)
    assert json.loads(server.cli("client", "show", "strict", "--json").stdout)["require_mfa"] is True
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(strict.url + "/login")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(server.url + "/login/two-step?*")
    await page.get_by_text("Lost your phone? Use a recovery code").click()
    await page.get_by_label("Recovery code").fill(recovery[0])
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(strict.url + "/callback?*")
    assert (strict.claims["amr"], strict.claims["acr"]) == (MFA, MFA_ACR)
    await context.close()
