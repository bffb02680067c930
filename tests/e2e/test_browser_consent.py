"""Consent in a real browser (headless Chromium driven by Playwright) against a real `tokensrv
serve`: a client added with `--consent required` sends the signed-in user to the consent page,
which names it and lists its scopes in words; Allow (by keyboard) gives the application its
tokens and a second authorization skips the page; Deny is access_denied; the account page lists
the consent and withdraws it. Screenshots go to tmp_path, or $TOKENSRV_SCREENSHOTS (docs/images/)."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import expect

from tests.helpers.party import Party, password, screenshots, shots_folder


async def photo_printer(server: Any, party_for: Any) -> Party:
    """The application "Photo Printer", which asks for consent, and alice."""
    return await party_for(server, "--consent", "required", "--name", "Photo Printer",
                           "--policy-uri", "https://printer.example/privacy", "--tos-uri", "https://printer.example/terms",
                           "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                           scope="openid profile email offline_access")


async def test_allow_then_remembered_then_withdrawn_and_deny(start_server, party_for, browser, tmp_path):
    server = start_server()
    party, folder = await photo_printer(server, party_for), shots_folder(tmp_path)
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server.url, party)
    await page.wait_for_url(server.url + "/consent?*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Photo Printer wants to access your account")
    await expect(page.locator("#consent-username")).to_have_text("alice")
    # where the answer goes (its name is the client's choice); an operator's client: no "not verified"
    await expect(page.locator("#consent-redirect-host")).to_have_text(urlsplit(party.url).hostname or "")
    await expect(page.locator("#consent-unverified")).to_have_count(0)
    await expect(page.locator("#consent-scopes li")).to_have_count(4)
    await expect(page.locator("#consent-scopes")).to_contain_text("See your email address")
    # it may refresh (the refresh_token grant): it keeps access, said once, last
    await expect(page.locator("#consent-keeps-access")).to_have_text(
        "Keep access when you are not using it, until you withdraw it")
    await expect(page.locator("#consent-scopes li").last).to_have_id("consent-keeps-access")
    allow, deny = page.get_by_role("button", name="Allow"), page.get_by_role("button", name="Deny")
    colours = [await b.evaluate("e => getComputedStyle(e).backgroundColor") for b in (allow, deny)]
    assert colours[0] != colours[1], colours  # primary and secondary look different
    await screenshots(page, "consent", folder)
    await allow.focus()
    await page.keyboard.press("Enter")  # keyboard only
    await page.wait_for_url(party.url + "/callback?*")
    assert party.claims["sub"] and party.claims["aud"] == "app"

    # remembered: the next authorization goes straight back with a code
    party.claims = {}
    await page.goto(party.url + "/login")
    await page.wait_for_url(party.url + "/callback?*")
    assert party.claims["sub"]

    # the account page lists it; withdrawing it means the page comes back
    await page.goto(server.url + "/account#consents")
    await expect(page.locator("#consent-list")).to_contain_text("Photo Printer")
    await screenshots(page, "account-consents", folder)
    await page.get_by_role("button", name="Withdraw Photo Printer's access").click()
    await expect(page.locator("#consent-none")).to_be_visible()
    assert json.loads(server.cli("user", "consents", "alice", "--json").stdout) == []
    await page.goto(party.url + "/login")
    await page.wait_for_url(server.url + "/consent?*")

    # Deny: the application is told access_denied, and no consent is kept
    await page.get_by_role("button", name="Deny").click()
    await page.wait_for_url(party.url + "/callback?*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("not signed in: access_denied")
    assert json.loads(server.cli("user", "consents", "alice", "--json").stdout) == []
    await context.close()
