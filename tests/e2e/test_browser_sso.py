"""Single sign-on in a real browser (headless Chromium driven by Playwright).

Two small relying parties, A and B, run on loopback ports: each sends the browser to
/oauth2/authorize with PKCE, and exchanges the code at the token endpoint over real HTTP. The
user logs in once at A; B then signs in on the SSO session without a login page; logging out at
A ends the session, revokes both applications' refresh tokens, and the next sign-in asks again.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.helpers.browser import b64url, on_login_page
from tests.helpers.oauth import PASSWORD
from tests.helpers.ports import free_port


def unverified_claims(jwt: str) -> dict[str, Any]:
    """The payload of a token the relying party just received from the token endpoint over HTTP."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class RelyingParty:
    """A minimal web application using tokensrv for sign-in (public client, PKCE)."""
    client_id: str
    port: int
    meta: dict[str, Any]
    pending: dict[str, tuple[str, str]] = field(default_factory=dict)  # state -> (verifier, nonce)
    tokens: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def login(self, request: web.Request) -> web.Response:
        verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        self.pending[state] = (verifier, nonce)
        query = {"client_id": self.client_id, "response_type": "code", "redirect_uri": self.url + "/callback",
                 "scope": "openid profile", "state": state, "nonce": nonce, "code_challenge_method": "S256",
                 "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest())}
        raise web.HTTPFound(self.meta["authorization_endpoint"] + "?" + urlencode(query))

    async def callback(self, request: web.Request) -> web.Response:
        state, code = request.query["state"], request.query["code"]
        assert request.query["iss"] == self.meta["issuer"]
        verifier, nonce = self.pending.pop(state)
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.meta["token_endpoint"], data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": self.url + "/callback",
                "code_verifier": verifier, "client_id": self.client_id})
            assert resp.status == 200, await resp.text()
            self.tokens = await resp.json()
            info = await (await http.get(self.meta["userinfo_endpoint"], headers={
                "Authorization": "Bearer " + self.tokens["access_token"]})).json()
        assert unverified_claims(self.tokens["id_token"])["nonce"] == nonce
        return web.Response(text=f"<h1>{self.client_id}: signed in as {info['preferred_username']}</h1>",
                            content_type="text/html")

    async def logout(self, request: web.Request) -> web.Response:
        query = {"id_token_hint": self.tokens["id_token"], "state": "bye",
                 "post_logout_redirect_uri": self.url + "/signed-out"}
        raise web.HTTPFound(self.meta["end_session_endpoint"] + "?" + urlencode(query))

    async def signed_out(self, request: web.Request) -> web.Response:
        return web.Response(text=f"<h1>{self.client_id}: signed out ({request.query['state']})</h1>",
                            content_type="text/html")

    async def refresh(self) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.meta["token_endpoint"], data={
                "grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"],
                "client_id": self.client_id})
            return resp.status, await resp.json()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/login", self.login)
        app.router.add_get("/callback", self.callback)
        app.router.add_get("/logout", self.logout)
        app.router.add_get("/signed-out", self.signed_out)
        return app


@pytest.fixture
async def parties(live_server) -> AsyncIterator[tuple[RelyingParty, RelyingParty]]:
    async with aiohttp.ClientSession() as http:
        meta = await (await http.get(live_server.url + "/.well-known/openid-configuration")).json()
    runners, parties = [], []
    for client_id in ("app-a", "app-b"):
        party = RelyingParty(client_id, free_port(), meta)
        live_server.cli("client", "add", "--id", client_id, "--public", "--scope", "openid", "--scope", "profile",
                        "--redirect-uri", party.url + "/callback",
                        "--post-logout-redirect-uri", party.url + "/signed-out", "--json")
        runner = web.AppRunner(party.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", party.port).start()
        runners.append(runner)
        parties.append(party)
    live_server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    yield parties[0], parties[1]
    for runner in runners:
        await runner.cleanup()


async def test_single_sign_on_across_two_applications_and_logout(live_server, parties, browser, tmp_path: Path):
    app_a, app_b = parties
    context = await browser.new_context()
    page = await context.new_page()
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)

    # A: no session yet, so the login page
    await page.goto(app_a.url + "/login")
    assert on_login_page(page, live_server.url), page.url
    await expect(page.get_by_label("Username")).to_be_visible()
    await expect(page.get_by_label("Password")).to_be_visible()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shot = tmp_path / "login.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a wrong password first: the generic message, the form again
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")

    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(app_a.url + "/callback?*")
    await expect(page.locator("h1")).to_have_text("app-a: signed in as alice")
    assert {"access_token", "refresh_token", "id_token"} <= app_a.tokens.keys()

    session_cookies = [c for c in await context.cookies(live_server.url) if c["name"] == "tokensrv_session"]
    assert len(session_cookies) == 1 and session_cookies[0]["httpOnly"] and session_cookies[0]["sameSite"] == "Lax"

    # B: straight through on the SSO session, no login page on the way
    visited.clear()
    await page.goto(app_b.url + "/login")
    await page.wait_for_url(app_b.url + "/callback?*")
    await expect(page.locator("h1")).to_have_text("app-b: signed in as alice")
    assert not any("/login?request=" in url for url in visited), visited
    sid_a = unverified_claims(app_a.tokens["id_token"])["sid"]
    assert unverified_claims(app_b.tokens["id_token"])["sid"] == sid_a
    assert (await app_b.refresh())[0] == 200

    # logout at A: back to A's page, and every token of the session is dead
    await page.goto(app_a.url + "/logout")
    await page.wait_for_url(app_a.url + "/signed-out?state=bye")
    await expect(page.locator("h1")).to_have_text("app-a: signed out (bye)")
    for party in (app_a, app_b):
        status, body = await party.refresh()
        assert (status, body["error"]) == (400, "invalid_grant")
    assert not [c for c in await context.cookies(live_server.url) if c["name"] == "tokensrv_session"]

    # the next sign-in asks for the password again
    await page.goto(app_b.url + "/login")
    assert on_login_page(page, live_server.url), page.url
    await expect(page.get_by_label("Username")).to_be_visible()
    await context.close()
