"""PAR in a real browser (headless Chromium driven by Playwright): a confidential relying party
registered with --require-par pushes its request to the PAR endpoint, sends the browser to
/oauth2/authorize with only client_id and request_uri, the user logs in, and the code is exchanged;
a second sign-in rides the SSO session; the same request sent without pushing is refused."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.helpers.browser import b64url, on_login_page
from tests.helpers.oauth import PASSWORD
from tests.helpers.ports import free_port


@dataclass
class PushingParty:
    """A web application that pushes its authorization requests (RFC 9126), with a client secret."""
    client_id: str
    secret: str
    port: int
    meta: dict[str, Any]
    pending: dict[str, str] = field(default_factory=dict)  # state -> verifier
    tokens: dict[str, Any] = field(default_factory=dict)
    pushed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    async def login(self, request: web.Request) -> web.Response:
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
        self.pending[state] = verifier
        form = {"response_type": "code", "redirect_uri": self.url + "/callback", "scope": "openid profile",
                "state": state, "nonce": secrets.token_urlsafe(12), "code_challenge_method": "S256",
                "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest())}
        if request.query.get("push") == "no":  # the same request straight through the browser
            raise web.HTTPFound(self.meta["authorization_endpoint"] + "?" + urlencode(
                {"client_id": self.client_id, **form}))
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.meta["pushed_authorization_request_endpoint"], data=form, headers=self.auth())
            assert resp.status == 201, await resp.text()
            pushed = await resp.json()
        self.pushed.append(pushed)
        raise web.HTTPFound(self.meta["authorization_endpoint"] + "?" + urlencode(
            {"client_id": self.client_id, "request_uri": pushed["request_uri"]}))

    async def callback(self, request: web.Request) -> web.Response:
        if "error" in request.query:
            return web.Response(text=f"<h1>{self.client_id}: refused ({request.query['error']})</h1>",
                                content_type="text/html")
        verifier = self.pending.pop(request.query["state"])
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.meta["token_endpoint"], headers=self.auth(), data={
                "grant_type": "authorization_code", "code": request.query["code"],
                "redirect_uri": self.url + "/callback", "code_verifier": verifier})
            assert resp.status == 200, await resp.text()
            self.tokens = await resp.json()
        claims = json.loads(base64.urlsafe_b64decode(self.tokens["id_token"].split(".")[1] + "=="))
        return web.Response(text=f"<h1>{self.client_id}: signed in ({claims['sid'][:4]})</h1>",
                            content_type="text/html")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/login", self.login)
        app.router.add_get("/callback", self.callback)
        return app


@pytest.fixture
async def party(live_server) -> AsyncIterator[PushingParty]:
    async with aiohttp.ClientSession() as http:
        meta = await (await http.get(live_server.url + "/.well-known/openid-configuration")).json()
    port = free_port()
    created = json.loads(live_server.cli(
        "client", "add", "--id", "pusher", "--require-par", "--redirect-uri", f"http://127.0.0.1:{port}/callback",
        "--scope", "openid", "--scope", "profile", "--json").stdout)
    live_server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    rp = PushingParty("pusher", created["client_secret"], port, meta)
    runner = web.AppRunner(rp.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rp
    await runner.cleanup()


async def test_pushed_request_through_the_login_page_then_on_the_sso_session(live_server, party, browser):
    context = await browser.new_context()
    page = await context.new_page()

    await page.goto(party.url + "/login")
    assert on_login_page(page, live_server.url), page.url
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(party.url + "/callback?*")
    await expect(page.locator("h1")).to_contain_text("pusher: signed in")
    assert {"access_token", "refresh_token", "id_token"} <= party.tokens.keys()
    assert party.pushed[0]["expires_in"] == 60

    # the request_uri was used: the browser going back to it gets an error page, not a code
    used = await page.goto(live_server.url + "/oauth2/authorize?" + urlencode(
        {"client_id": "pusher", "request_uri": party.pushed[0]["request_uri"]}))
    assert used is not None and used.status == 400

    # a second sign-in: pushed again, answered by the SSO session without the login page
    await page.goto(party.url + "/login")
    await page.wait_for_url(party.url + "/callback?*")
    await expect(page.locator("h1")).to_contain_text("pusher: signed in")
    assert len(party.pushed) == 2

    # the client must push: the same request sent through the browser is refused
    await page.goto(party.url + "/login?push=no")
    await page.wait_for_url(party.url + "/callback?*")
    await expect(page.locator("h1")).to_have_text("pusher: refused (invalid_request)")
    await context.close()
