"""A minimal application signing in through a live tokensrv in a real browser, and the pages'
screenshots at a phone's width and a desktop's."""
from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt as pyjwt
import pytest
from aiohttp import web
from playwright.async_api import Page

from tests.helpers.browser import b64url, on_login_page
from tests.helpers.oauth import PASSWORD
from tests.helpers.ports import free_port


@dataclass
class Party:
    """A minimal application signing in through tokensrv (public client, PKCE). Its /login passes
    its own query on to the authorization request (acr_values, max_age, prompt, claims...); it keeps
    the claims of the last ID token, verified with PyJWT, or the error the authorization came back with."""
    issuer: str
    client_id: str = "app"
    scope: str = "openid"
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
                 "scope": self.scope, "state": state, "code_challenge_method": "S256",
                 "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()), **request.query}
        raise web.HTTPFound(self.issuer + "/oauth2/authorize?" + urlencode(query))

    async def callback(self, request: web.Request) -> web.Response:
        verifier = self.pending.pop(request.query["state"])
        if "error" in request.query:  # RFC 6749 §4.1.2.1: told, as an application would show it
            self.error, self.claims = request.query["error"], {}
            return web.Response(text=f"<h1>not signed in: {self.error}</h1>", content_type="text/html")
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

    async def serve(self) -> web.AppRunner:
        """Listening on its port; the caller cleans the runner up."""
        app = web.Application()
        app.router.add_get("/login", self.login)
        app.router.add_get("/callback", self.callback)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


async def screenshots(page: Page, name: str, folder: Path) -> None:
    """The page at a phone's width and a desktop's, whole."""
    for width, height in ((390, 844), (1280, 800)):
        await page.set_viewport_size({"width": width, "height": height})
        path = folder / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def shots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TOKENSRV_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def password(page: Page, server_url: str, party: Party) -> None:
    await page.goto(party.url + "/login")
    assert on_login_page(page, server_url), page.url
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


@pytest.fixture
async def party_for() -> AsyncIterator[Any]:
    """start(server, *flags, client_id="app", scope="openid", user=True): the application, added as a
    public client with `client add` and the extra flags, and (with user) alice, whose password is PASSWORD."""
    runners: list[web.AppRunner] = []

    async def start(server: Any, *flags: str, client_id: str = "app", scope: str = "openid",
                    user: bool = True) -> Party:
        party = Party(server.url, client_id, scope)
        scopes = [arg for name in scope.split() for arg in ("--scope", name)]
        server.cli("client", "add", "--id", client_id, "--public", *scopes,
                   "--redirect-uri", party.url + "/callback", *flags, "--json")
        if user:
            server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
        runners.append(await party.serve())
        return party
    yield start
    for runner in runners:
        await runner.cleanup()
