"""Consent in a real browser (headless Chromium driven by Playwright) against a real `tokensrv
serve`: a client added with `--consent required` sends the signed-in user to the consent page,
which names it and lists its scopes in words; Allow (by keyboard) gives the application its
tokens and a second authorization skips the page; Deny is access_denied; the account page lists
the consent and withdraws it. Screenshots go to tmp_path, or $TOKENSRV_SCREENSHOTS (docs/images/)."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.helpers.oauth import PASSWORD
from tests.helpers.party import Party, password, screenshots, shots_folder


@pytest.fixture
async def party_for() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(server: Any) -> Party:
        party = Party(server.url, scope="openid profile email offline_access")
        server.cli("client", "add", "--id", "app", "--public", "--consent", "required", "--name", "Photo Printer",
                   "--policy-uri", "https://printer.example/privacy", "--tos-uri", "https://printer.example/terms",
                   "--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "offline_access",
                   "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                   "--redirect-uri", party.url + "/callback", "--json")
        server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
        app = web.Application()
        app.router.add_get("/login", party.login)
        app.router.add_get("/callback", party.callback)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", party.port).start()
        runners.append(runner)
        return party
    yield start
    for runner in runners:
        await runner.cleanup()


async def test_allow_then_remembered_then_withdrawn_and_deny(start_server, party_for, browser, tmp_path):
    server = start_server()
    party, folder = await party_for(server), shots_folder(tmp_path)
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server.url, party)
    await page.wait_for_url(server.url + "/consent?*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Photo Printer wants to access your account")
    await expect(page.locator("#consent-username")).to_have_text("alice")
    await expect(page.locator("#consent-scopes li")).to_have_count(4)
    await expect(page.locator("#consent-scopes")).to_contain_text("See your email address")
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
