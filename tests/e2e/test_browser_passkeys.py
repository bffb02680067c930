"""Passkeys in a real browser (headless Chromium with the DevTools virtual authenticator) against a
real `tokensrv serve`: registered from /account, signed in with alone (no username typed), used as
the second step after a password, a replayed assertion refused, a removed one refused (its
credential kept in an authenticator and tried), `tokensrv user mfa show|reset`. The ID tokens are
checked by PyJWT against the published JWKS, as an application would.

WebAuthn needs a secure context and an RP ID that is a domain: the server's issuer is
http://localhost:<port> (127.0.0.1 is secure too, but an IP address is no RP ID).
Screenshots go to tmp_path, or to $TOKENSRV_SCREENSHOTS (docs/images/ for the guide).
"""
from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, expect

from tests.helpers.party import Party, party_for, password, screenshots, shots_folder
from tests.helpers.ports import free_port

__all__ = ["party_for"]  # a fixture, used by the tests below

ALONE = ["hwk", "user", "mfa"]  # a device-bound passkey with user verification (oauth/browser/passkeys.py)
AFTER_PASSWORD = ["pwd", "hwk", "mfa"]
MFA = "urn:tokensrv:acr:mfa"
AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}


def localhost_server(start_server: Any) -> tuple[Any, str]:
    port = free_port()
    issuer = f"http://localhost:{port}"
    return start_server(TOKENSRV_PORT=str(port), TOKENSRV_ISSUER=issuer), issuer


async def with_authenticator(browser: Browser, *credentials: dict[str, Any]) -> tuple[BrowserContext, Page,
                                                                                    CDPSession, str]:
    """A fresh browser with a platform authenticator holding `credentials` (exported earlier)."""
    context = await browser.new_context()
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    authenticator = (await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR}))["authenticatorId"]
    for credential in credentials:
        await cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator, "credential": credential})
    return context, page, cdp, authenticator


async def held(cdp: CDPSession, authenticator: str) -> list[dict[str, Any]]:
    return (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"]


async def add_passkey(page: Page, issuer: str, name: str) -> None:
    await page.goto(issuer + "/account")
    await page.get_by_label("Name for a new passkey").fill(name)
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.locator("#passkey-list .name", has_text=name)).to_be_visible()


async def passkey_alone(page: Page, issuer: str, party: Party) -> None:
    await page.goto(party.url + "/login")
    await page.wait_for_url(issuer + "/login?*")
    await page.get_by_role("button", name="Use a passkey").click()


async def test_passkeys_register_sign_in_second_step_replay_remove_and_reset(start_server, party_for, browser,
                                                                             tmp_path):
    server, issuer = localhost_server(start_server)
    party = await party_for(server)
    party.issuer = issuer  # tokens name the issuer the browser used
    folder = shots_folder(tmp_path)

    # a password sign-in, then two passkeys added on the account page (two authenticators in turn:
    # a new passkey is never made on an authenticator that holds one of the user's already)
    context, page, cdp, first = await with_authenticator(browser)
    await password(page, issuer, party)
    await page.wait_for_url(party.url + "/callback?*")
    assert party.claims["amr"] == ["pwd"]
    await page.goto(issuer + "/account")
    await expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()
    await add_passkey(page, issuer, "Laptop")
    laptop = (await held(cdp, first))[0]
    await cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first})
    second = (await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR}))["authenticatorId"]
    await add_passkey(page, issuer, "")  # no name typed: one is made from the authenticator's transports
    await expect(page.locator("#passkey-list > li")).to_have_count(2)
    await expect(page.locator("#passkey-list .name", has_text="This device's passkey")).to_be_visible()
    phone = (await held(cdp, second))[0]
    await page.locator("#passkey-list > li", has_text="Laptop").locator("summary").click()
    await screenshots(page, "account-passkeys", folder)
    await context.close()

    # signed in with a passkey alone: no username typed, the credential names the user
    context, page, cdp, authenticator = await with_authenticator(browser, laptop)
    bodies: list[str] = []
    page.on("request", lambda r: bodies.append(r.post_data or "") if r.url == issuer + "/login/passkey" else None)
    await page.goto(party.url + "/login")
    await page.wait_for_url(issuer + "/login?*")
    await expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    await screenshots(page, "login-passkey", folder)
    await page.get_by_role("button", name="Use a passkey").click()
    await page.wait_for_url(party.url + "/callback?*")
    assert (party.claims["amr"], party.claims["acr"]) == (ALONE, MFA)

    # that assertion again, for a new sign-in request in the same browser: its challenge was used
    await context.clear_cookies(name="tokensrv_session")  # signed out, the CSRF cookie kept
    await page.goto(party.url + "/login")
    await page.wait_for_url(issuer + "/login?*")
    replay = {**json.loads(bodies[0]), "request": page.url.split("request=")[1],
              "csrf_token": await page.locator('input[name="csrf_token"]').input_value()}
    answer = await context.request.post(issuer + "/login/passkey", data=json.dumps(replay),
                                        headers={"Content-Type": "application/json"})
    assert answer.status == 400, await answer.text()
    assert (await answer.json())["error_description"].startswith("That passkey could not be used")
    await page.get_by_role("button", name="Use a passkey").click()  # a fresh assertion: the request is fine
    await page.wait_for_url(party.url + "/callback?*")
    clone, laptop = laptop, (await held(cdp, authenticator))[0]  # its signature counter moved on
    await context.close()

    # a copy of the credential as it was before those sign-ins: its counter went backwards (a
    # cloned authenticator, WebAuthn §6.1.1), refused and audited
    context, page, cdp, _ = await with_authenticator(browser, clone)
    await passkey_alone(page, issuer, party)
    await expect(page.get_by_role("alert")).to_contain_text("That passkey could not be used")
    assert '"passkey.counter_regressed"' in server.log()
    await context.close()

    # the second step after a password: "Use a passkey" (this user has no TOTP)
    context, page, cdp, authenticator = await with_authenticator(browser, laptop)
    await password(page, issuer, party)
    await page.wait_for_url(issuer + "/login/two-step?*")
    await expect(page.get_by_label("6-digit code")).to_have_count(0)
    await page.get_by_role("button", name="Use a passkey").click()
    await page.wait_for_url(party.url + "/callback?*")
    assert (party.claims["amr"], party.claims["acr"]) == (AFTER_PASSWORD, MFA)

    # "Laptop" removed on the account page, confirmed with the passkey itself
    await page.goto(issuer + "/account")
    item = page.locator("#passkey-list > li", has_text="Laptop")
    await item.locator("summary").click()
    await item.get_by_role("button", name="Confirm with a passkey and remove").click()
    await expect(page.locator("#account-notice")).to_have_text("The passkey was removed.")
    await expect(page.locator("#passkey-list .name")).to_have_text(["This device's passkey"])
    laptop = (await held(cdp, authenticator))[0]  # with its latest counter: refused for removal alone
    await context.close()

    # its credential, still in an authenticator, signs nobody in
    context, page, cdp, _ = await with_authenticator(browser, laptop)
    await passkey_alone(page, issuer, party)
    await expect(page.get_by_role("alert")).to_contain_text("That passkey could not be used")
    await context.close()

    # the operator: shown, then reset (a lost phone); the other passkey is refused afterwards
    shown = json.loads(server.cli("user", "mfa", "show", "alice", "--json").stdout)
    assert [k["name"] for k in shown["passkeys"]] == ["This device's passkey"]
    reset = json.loads(server.cli("user", "mfa", "reset", "alice", "--json").stdout)
    assert reset["removed"] is True and reset["passkeys_removed"] == 1
    assert json.loads(server.cli("user", "mfa", "show", "alice", "--json").stdout)["passkeys"] == []
    context, page, cdp, _ = await with_authenticator(browser, phone)
    await passkey_alone(page, issuer, party)
    await expect(page.get_by_role("alert")).to_contain_text("That passkey could not be used")
    await context.close()
    log = server.log()
    for event in ("passkey.registered", "passkey.used", "passkey.removed", "passkey.failed"):
        assert f'"{event}"' in log, event
    assert laptop["privateKey"] not in log
