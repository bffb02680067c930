"""The account page in a real browser (headless Chromium driven by Playwright) against a real
`tokensrv serve`: three browsers signed in as one user; one ends another (whose application gets
a back-channel logout, and whose next sign-in asks for the password), then all others after the
password is asked again (TOKENSRV_RECENT_AUTH=0: always, no waiting); a TV connected with the
device grant listed then disconnected; the password changed from the keyboard.

Screenshots go to tmp_path, or to $TOKENSRV_SCREENSHOTS (docs/images/ for the guide).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.helpers.backchannel import Receiver
from tests.helpers.browser import on_login_page
from tests.helpers.oauth import PASSWORD
from tests.helpers.party import Party, password, screenshots, shots_folder

NEW_PASSWORD = "correct horse battery staple"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
async def world(start_server) -> AsyncIterator[tuple[Any, Party, Receiver]]:
    """The server, an application "Orders" (public client, back-channel logout) and its receiver."""
    server = start_server(TOKENSRV_RECENT_AUTH="0", TOKENSRV_DEVICE_POLL_INTERVAL="1")
    party, receiver = Party(server.url), await Receiver().start()
    server.cli("client", "add", "--id", "app", "--public", "--scope", "openid", "--name", "Orders",
               "--redirect-uri", party.url + "/callback", "--backchannel-logout-uri", receiver.uri("/bcl"), "--json")
    server.cli("client", "add", "--id", "tv", "--public", "--scope", "openid", "--name", "Living-room TV",
               "--grant-type", "device_code", "--grant-type", "refresh_token", "--json")
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    runner = await party.serve()
    yield server, party, receiver
    await runner.cleanup()
    await receiver.stop()


async def signed_in(browser: Browser, server: Any, party: Party) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await password(page, server.url, party)
    await page.wait_for_url(party.url + "/callback?*")
    return page


async def asks_for_password(page: Page, server: Any, party: Party) -> bool:
    await page.goto(party.url + "/login")
    await page.wait_for_load_state()
    return on_login_page(page, server.url)


async def connect_tv(page: Page, server: Any) -> str:
    """The device grant: the TV starts, this browser approves, the TV polls: its refresh token."""
    async with aiohttp.ClientSession() as http:
        started = await (await http.post(server.url + "/oauth2/device_authorization",
                                         data={"client_id": "tv", "scope": "openid"})).json()
        await page.goto(started["verification_uri_complete"])
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("h1")).to_have_text("Device connected")
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # the device's own polling, at the interval the server asks for
            answer = await (await http.post(server.url + "/oauth2/token", data={
                "grant_type": DEVICE, "device_code": started["device_code"], "client_id": "tv"})).json()
            if "refresh_token" in answer or asyncio.get_running_loop().time() > deadline:
                break
            assert answer["error"] in ("authorization_pending", "slow_down"), answer
            await asyncio.sleep(started["interval"])  # RFC 8628 §3.5: the device waits between polls
    assert "refresh_token" in answer, answer
    return str(answer["refresh_token"])


async def refresh_refused(server: Any, refresh_token: str) -> bool:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(server.url + "/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": "tv", "refresh_token": refresh_token})
        return resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def test_sessions_devices_and_password_on_the_account_page(world, browser, tmp_path):
    server, party, receiver = world
    folder = shots_folder(tmp_path)
    laptop, phone, here = [await signed_in(browser, server, party) for _ in range(3)]
    tv_refresh = await connect_tv(here, server)

    await here.goto(server.url + "/account")
    sessions = here.locator("#session-list > li")
    await expect(sessions).to_have_count(3)
    await expect(sessions.first).to_contain_text("This device")
    await expect(sessions.first).to_contain_text("Orders")
    await expect(sessions.first).to_contain_text("Chrome on Linux")
    await expect(here.locator("#device-list")).to_contain_text("Living-room TV")
    await screenshots(here, "account", folder)

    # end one other session: the laptop's (its application is told; its next sign-in asks)
    await laptop.goto(server.url + "/account")
    laptop_sid = await laptop.locator("#session-list > li.current").get_attribute("data-sid")
    await here.locator(f'#session-list > li[data-sid="{laptop_sid}"]').get_by_role("button", name="Sign out").click()
    await expect(here.locator("#account-notice")).to_have_text("That session is signed out.")
    await expect(sessions).to_have_count(2)
    [hit] = await receiver.wait_for("/bcl")
    assert hit.status == 200 and hit.token
    assert laptop_sid not in [await s.get_attribute("data-sid") for s in await sessions.all()]
    assert await asks_for_password(laptop, server, party)

    # all others: the password first (TOKENSRV_RECENT_AUTH=0), a wrong one said so
    await here.bring_to_front()  # the other browsers' pages took the focus
    await here.get_by_role("button", name="Sign out of all other sessions").click()
    await expect(here.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    await expect(here.get_by_label("Your password")).to_be_focused()
    await screenshots(here, "account-confirm", folder)
    await here.get_by_label("Your password").fill("not my password")
    await here.get_by_role("button", name="Confirm and continue").click()
    await expect(here.locator("#reauth-error")).to_contain_text("not right")
    await here.get_by_label("Your password").fill(PASSWORD)
    await here.keyboard.press("Enter")
    await expect(here.locator("#account-notice")).to_have_text("You are signed out everywhere else.")
    await expect(sessions).to_have_count(1)
    assert await asks_for_password(phone, server, party)

    # the TV: listed, then disconnected; its refresh token is refused
    await here.locator("#device-list").get_by_role("button", name="Disconnect").click()
    await expect(here.locator("#account-notice")).to_contain_text("Disconnected")
    await expect(here.locator("#devices")).to_contain_text("No device is connected.")
    assert await refresh_refused(server, tv_refresh)

    # the password, keyboard only: a mismatch keeps nothing typed and says what to do, then the change
    await here.get_by_label("Current password").fill(PASSWORD)
    await here.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await here.get_by_label("New password again").fill("something else")
    await here.get_by_label("New password again").press("Enter")
    await expect(here.locator("#password-error")).to_contain_text("Type the new password twice")
    await expect(here.get_by_label("Current password")).to_have_value("")
    await here.get_by_label("Current password").fill(PASSWORD)
    await here.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await here.get_by_label("New password again").fill(NEW_PASSWORD)
    await here.get_by_label("New password again").press("Enter")
    await expect(here.locator("#account-notice")).to_contain_text("Your password is changed.")
    await here.goto(server.url + "/account")  # still signed in, on a new session
    await expect(here.get_by_role("heading", name="Your account")).to_be_visible()
    await here.get_by_role("button", name="Sign out", exact=True).focus()
    await here.keyboard.press("Enter")
    await expect(here.get_by_role("heading", name="Signed out")).to_be_visible()
