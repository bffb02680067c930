"""TOTP as a second factor in a real browser (headless Chromium driven by Playwright) against a
real `tokensrv serve`: enrolment on /account with the code computed from the secret read off the
page, sign-in with a code, a replayed code refused, a recovery code used once, wrong codes
throttled, `tokensrv user mfa reset`, and TOKENSRV_MFA=required leading through enrolment. The ID
tokens are checked by PyJWT against the published JWKS, as an application would.

Screenshots of the pages go to tmp_path, or to $TOKENSRV_SCREENSHOTS (docs/images/ for the guide).
"""
from __future__ import annotations

import json
import re
import time
from typing import Any

import pyotp
from playwright.async_api import Browser, Page, expect

from tests.helpers.party import Party, password, screenshots, shots_folder

MFA = ["pwd", "otp", "mfa"]


async def code_step(browser: Browser, server_url: str, party: Party) -> tuple[Any, Page]:
    """A fresh browser past the password: on the code step."""
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server_url, party)
    await page.wait_for_url(server_url + "/login/two-step?*")
    return context, page


def secret_of(text: str | None) -> str:
    assert text and re.fullmatch(r"[A-Z2-7 ]+", text.strip()), text
    return text.replace(" ", "").strip()


async def test_totp_enrolment_sign_in_replay_recovery_throttle_and_reset(start_server, party_for, browser, tmp_path):
    server = start_server(TOKENSRV_LOGIN_MAX_FAILURES="5")
    party, folder = await party_for(server), shots_folder(tmp_path)

    # a password-only sign-in first: the application is told so
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server.url, party)
    await page.wait_for_url(party.url + "/callback?*")
    assert (party.claims["amr"], party.claims["acr"]) == (["pwd"], "urn:tokensrv:acr:pwd")

    # the account page, on the same SSO session
    await page.goto(server.url + "/account")
    await expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    await expect(page.locator("#totp-status")).to_have_text("Off")
    await screenshots(page, "account-before", folder)
    await page.get_by_role("button", name="Set up two-step verification").click()
    await expect(page.locator("#totp-qr svg")).to_be_visible()  # drawn by the server, inline
    await page.get_by_text("Can't scan it? Type the key instead").click()
    secret = secret_of(await page.locator("#totp-secret").text_content())
    assert f"secret={secret}" in (await page.locator("#totp-uri").get_attribute("href") or "")
    await screenshots(page, "account-setup", folder)
    totp = pyotp.TOTP(secret)
    await page.get_by_label("6-digit code").fill(totp.now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#totp-status")).to_have_text("On")
    codes = [c.strip() for c in await page.locator("#recovery-codes code").all_text_contents()]
    assert len(codes) == 10 and len(set(codes)) == 10
    await screenshots(page, "account-after", folder)
    await context.close()

    # a new browser: password, then the code step; a wrong code first keeps what was typed
    context, page = await code_step(browser, server.url, party)
    field_ = page.get_by_label("6-digit code")
    assert (await field_.get_attribute("autocomplete"), await field_.get_attribute("inputmode")) == (
        "one-time-code", "numeric")
    await expect(field_).to_be_focused()
    await screenshots(page, "two-step", folder)
    # the next time-step's code: within the drift allowed, and newer than the enrolment's
    code = totp.at(time.time() + 30)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in (code, totp.now()))
    await field_.fill(wrong)
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await expect(page.get_by_label("6-digit code")).to_have_value(wrong)
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(party.url + "/callback?*")
    assert (party.claims["amr"], party.claims["acr"]) == (MFA, "urn:tokensrv:acr:mfa")
    await context.close()

    # the same code again, in another browser: refused (used once); a recovery code instead
    context, page = await code_step(browser, server.url, party)
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await page.get_by_text("Lost your phone? Use a recovery code").click()
    await page.get_by_label("6-digit code").fill("")
    await page.get_by_label("Recovery code").fill(codes[0])
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(party.url + "/callback?*")
    assert party.claims["amr"] == MFA
    await context.close()

    # that recovery code is spent; and guessing ends on the 429 page
    context, page = await code_step(browser, server.url, party)
    await page.get_by_text("Lost your phone? Use a recovery code").click()
    await page.get_by_label("Recovery code").fill(codes[0])
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("alert")).to_contain_text("used already")
    await expect(page.get_by_label("Recovery code")).to_have_value(codes[0])
    await page.get_by_label("Recovery code").fill("")
    for _ in range(6):
        if await page.get_by_role("heading", name="Something went wrong").count():
            break
        await page.get_by_label("6-digit code").fill(wrong)
        await page.get_by_role("button", name="Verify").click()
        await page.wait_for_load_state()
    await expect(page.get_by_role("alert")).to_contain_text("Too many wrong codes entered")
    await context.close()

    # a lost phone: the operator resets it; the next sign-in is by password alone
    shown = json.loads(server.cli("user", "mfa", "show", "alice", "--json").stdout)
    assert shown["totp"] and shown["recovery_codes_left"] == 9
    reset = json.loads(server.cli("user", "mfa", "reset", "alice", "--json").stdout)
    assert reset["removed"] is True
    assert not json.loads(server.cli("user", "mfa", "show", "alice", "--json").stdout)["totp"]
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server.url, party)
    await page.wait_for_url(party.url + "/callback?*")
    assert party.claims["amr"] == ["pwd"]
    await context.close()
    log = server.log()
    assert '"mfa.enrolled"' in log and '"mfa.failed"' in log and '"mfa.recovery_code_used"' in log, log
    assert secret not in log and not any(c in log for c in codes)  # never logged


async def test_required_policy_leads_through_enrolment_after_the_password(start_server, party_for, browser):
    server = start_server(TOKENSRV_MFA="required")
    party = await party_for(server)
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server.url, party)
    await page.wait_for_url(server.url + "/login/two-step?*")
    await expect(page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    secret = secret_of(await page.locator("#totp-secret").text_content())
    await page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on and continue").click()
    await expect(page.locator("#recovery-codes code")).to_have_count(10)
    assert party.claims == {}  # the application is reached only once the codes were shown
    await page.get_by_role("link", name="I have saved them, continue").click()
    await page.wait_for_url(party.url + "/callback?*")
    assert (party.claims["amr"], party.claims["acr"]) == (MFA, "urn:tokensrv:acr:mfa")
    await context.close()
