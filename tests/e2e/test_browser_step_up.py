"""Step-up in a real browser (headless Chromium driven by Playwright) against a real `tokensrv
serve`: from a password-only SSO session, prompt=login and max_age=0 ask for the password only
(the username fixed and shown), acr_values=mfa asks for the code only (no password field), an
essential acr that cannot be met comes back to the application as the OIDC error, and a client
added with --require-mfa gets the second step. The ID tokens are checked by PyJWT against the
published JWKS, as an application would.

Screenshots of the "Confirm it's you" page go to tmp_path, or to $TOKENSRV_SCREENSHOTS.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt as pyjwt
import pyotp
import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from tests.helpers.browser import b64url
from tests.helpers.oauth import PASSWORD
from tests.helpers.ports import free_port

MFA, MFA_ACR = ["pwd", "otp", "mfa"], "urn:tokensrv:acr:mfa"


@dataclass
class Party:
    """An application (public client, PKCE) whose /login passes its query on to the authorization
    request (acr_values, max_age, prompt, claims); it keeps the last ID token's claims or error."""
    issuer: str
    client_id: str = "app"
    port: int = field(default_factory=free_port)
    pending: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def login(self, request: web.Request) -> web.Response:
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
        self.pending[state] = verifier
        query = {"client_id": self.client_id, "response_type": "code", "redirect_uri": self.url + "/callback",
                 "scope": "openid", "state": state, "code_challenge_method": "S256",
                 "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()), **request.query}
        raise web.HTTPFound(self.issuer + "/oauth2/authorize?" + urlencode(query))

    async def callback(self, request: web.Request) -> web.Response:
        verifier = self.pending.pop(request.query["state"])
        if "error" in request.query:
            self.error, self.claims = request.query["error"], {}
            return web.Response(text=f"<h1>refused: {self.error}</h1>", content_type="text/html")
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.issuer + "/oauth2/token", data={
                "grant_type": "authorization_code", "code": request.query["code"], "client_id": self.client_id,
                "redirect_uri": self.url + "/callback", "code_verifier": verifier})
            assert resp.status == 200, await resp.text()
            id_token = (await resp.json())["id_token"]
            jwks = await (await http.get(self.issuer + "/.well-known/jwks.json")).json()
        key = pyjwt.PyJWKSet.from_dict(jwks)[pyjwt.get_unverified_header(id_token)["kid"]]
        self.claims = pyjwt.decode(id_token, key.key, algorithms=["RS256"], audience=self.client_id,
                                   issuer=self.issuer)
        self.error = ""
        return web.Response(text=f"<h1>signed in: {' '.join(self.claims['amr'])}</h1>", content_type="text/html")


@pytest.fixture
async def party_for() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(server: Any, client_id: str = "app", *flags: str) -> Party:
        party = Party(server.url, client_id)
        server.cli("client", "add", "--id", client_id, "--public", "--scope", "openid",
                   "--redirect-uri", party.url + "/callback", *flags, "--json")
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


async def screenshots(page: Page, name: str, folder: Path) -> None:
    for width, height in ((390, 844), (1280, 800)):
        await page.set_viewport_size({"width": width, "height": height})
        path = folder / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    party = await party_for(server)
    folder = Path(os.environ.get("TOKENSRV_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
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
    strict = await party_for(server, "strict", "--require-mfa")
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
