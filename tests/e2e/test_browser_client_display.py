"""The login page in headless Chromium shows the registered client as people should see it: its
name as text (HTML in it is not markup and runs nothing), its https logo loaded under our CSP with
no referrer (our URLs carry request ids), and links to its policy and terms."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.request
from urllib.parse import urlencode

from playwright.async_api import Request, Route, async_playwright, expect

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, b64url
from tests.helpers.cli import cli_json

HOSTILE_NAME = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>Bold</b>'
LOGO = "https://logo.example.org/rp.png"
# a 1x1 PNG: what the logo host answers (intercepted: the test needs no network)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                       "awAAAABJRU5ErkJggg==")


def register(server, metadata) -> dict:
    token = cli_json(server, "client", "token")["initial_access_token"]
    request = urllib.request.Request(server.url + "/oauth2/register", data=json.dumps(metadata).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 201
        return json.load(resp)


def authorization_url(server, client_id: str) -> str:
    verifier = secrets.token_urlsafe(48)
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": "http://127.0.0.1:9/cb",
             "scope": "openid", "state": "s", "code_challenge_method": "S256",
             "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest())}
    return server.url + "/oauth2/authorize?" + urlencode(query)


async def test_the_login_page_shows_the_name_escaped_the_logo_without_referrer_and_the_links(start_server):
    server = start_server(TOKENSRV_REGISTRATION="on")
    client = register(server, {"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none",
                               "client_name": HOSTILE_NAME, "logo_uri": LOGO,
                               "policy_uri": "https://rp.example.org/privacy", "tos_uri": "https://rp.example.org/tos"})
    logo_requests: list[Request] = []

    async def logo(route: Route) -> None:
        logo_requests.append(route.request)
        await route.fulfill(status=200, content_type="image/png", body=PNG)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.route("https://logo.example.org/**", logo)
            await page.goto(authorization_url(server, client["client_id"]))
            await expect(page.locator("#client-name")).to_have_text(HOSTILE_NAME)  # the text, verbatim
            assert await page.locator("#client-name b, #client-name script, #client-name img").count() == 0
            assert await page.evaluate("window.pwned") is None  # nothing in the name ran
            logo_img = page.locator("#client-logo")
            await expect(logo_img).to_have_attribute("referrerpolicy", "no-referrer")
            assert (await logo_img.get_attribute("width"), await logo_img.get_attribute("height")) == ("48", "48")
            await page.wait_for_function("document.getElementById('client-logo').complete")
            assert await logo_img.evaluate("img => img.naturalWidth") == 1  # loaded: the CSP lets https images in
            assert logo_requests and "referer" not in {k.lower() for k in await logo_requests[0].all_headers()}
            await expect(page.locator("#client-policy")).to_have_attribute("href", "https://rp.example.org/privacy")
            await expect(page.locator("#client-tos")).to_have_attribute("href", "https://rp.example.org/tos")
        finally:
            await browser.close()
    assert "Traceback" not in server.log()


async def test_a_client_without_a_name_is_shown_by_its_id(start_server):
    server = start_server()
    server.cli("client", "add", "--id", "plain-app", "--public", "--redirect-uri", "http://127.0.0.1:9/cb",
               "--scope", "openid")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(authorization_url(server, "plain-app"))
            await expect(page.locator("#client-name")).to_have_text("plain-app")
            assert await page.locator("#client-logo, #client-policy, #client-tos").count() == 0
        finally:
            await browser.close()
