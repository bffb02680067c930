"""Issue 25 item 2 end to end: the example SPA (examples/spa/) on a second origin, served as plain
static files with oidc-client-ts at the version its package-lock.json pins (installed with `npm ci`
into a cache folder, no CDN), signs in with PKCE against a real `tokensrv serve` in Chromium, reads
its profile, calls UserInfo cross-origin (a preflight: it sends Authorization), renews silently with
its refresh token, revokes, and signs out through the end-session endpoint. The same page on an
origin nobody registered cannot read the answers.

Screenshots of the SPA go to tmp_path, or to $TOKENSRV_SCREENSHOTS (docs/images/ for the guide).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import expect

from examples.spa.__main__ import HERE, spa_app
from tests.helpers.browser import on_login_page
from tests.helpers.oauth import PASSWORD
from tests.helpers.party import screenshots
from tests.helpers.ports import free_port

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tokensrv-tests" / "spa"
STORED_USER = "sessionStorage.getItem(Object.keys(sessionStorage).find(k => k.startsWith('oidc.user')))"
BUNDLE = Path("node_modules/oidc-client-ts/dist/browser/oidc-client-ts.js")


@pytest.fixture(scope="session")
def oidc_client_ts() -> Path:
    """The oidc-client-ts browser bundle that examples/spa/package-lock.json pins: `npm ci` once into
    a cache folder named by the lock file's digest (a fresh clone needs node and npm: .ci/run)."""
    lock = (HERE / "package-lock.json").read_bytes()
    folder = CACHE / hashlib.sha256(lock).hexdigest()[:16]
    if not (folder / BUNDLE).is_file():
        npm = shutil.which("npm")
        assert npm, "npm is needed for the SPA test (Debian: apt-get install nodejs npm; .ci/run does)"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, folder / name)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=folder,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    return folder / BUNDLE


@pytest.fixture
async def spa_server(oidc_client_ts: Path) -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(issuer: str, client_id: str = "spa") -> int:
        port = free_port()
        runner = web.AppRunner(spa_app(issuer, client_id, library=oidc_client_ts), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return port
    yield start
    for runner in runners:
        await runner.cleanup()


async def test_the_spa_signs_in_calls_userinfo_renews_revokes_and_signs_out(start_server, spa_server, browser,
                                                                            tmp_path):
    server = start_server(TOKENSRV_BROWSER_REFRESH_IDLE="3600")
    port = await spa_server(server.url)
    spa = f"http://localhost:{port}"  # tokensrv is http://127.0.0.1:PORT: another origin, another site
    server.cli("client", "add", "--id", "spa", "--public", "--redirect-uri", spa + "/", "--name", "Example SPA",
               "--post-logout-redirect-uri", spa + "/", "--allowed-origin", spa, "--scope", "openid",
               "--scope", "profile", "--json")
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert json.loads(server.cli("client", "show", "spa", "--json").stdout)["allowed_origins"] == [spa]
    folder = Path(os.environ.get("TOKENSRV_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    context = await browser.new_context()
    page = await context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    await page.goto(spa + "/")
    await expect(page.locator("#status")).to_have_text("Ready.")

    # PKCE sign-in: signinRedirect -> tokensrv's login page -> back -> signinRedirectCallback
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(server.url + "/login?*")
    assert on_login_page(page, server.url)
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(spa + "/")
    await expect(page.locator("#status")).to_have_text("Signed in.")
    profile = json.loads(await page.locator("#profile").text_content() or "{}")
    assert profile["iss"] == server.url and profile["aud"] == "spa" and profile["sub"]
    await expect(page.locator("#refresh")).to_contain_text("held")

    # UserInfo cross-origin: Authorization makes the browser send a preflight first
    await page.get_by_role("button", name="Call UserInfo").click()
    await expect(page.locator("#status")).to_have_text("UserInfo answered.")
    info = json.loads(await page.locator("#userinfo-result").text_content() or "{}")
    assert info["sub"] == profile["sub"] and info["preferred_username"] == "alice"
    await screenshots(page, "spa-signed-in", folder)

    # silent renew with the refresh token (the refresh_token grant, cross-origin), twice: it rotates
    first = await page.evaluate(STORED_USER)
    for n in (1, 2):
        await page.get_by_role("button", name="Renew tokens").click()
        await expect(page.locator("#renewals")).to_have_text(str(n))
    await expect(page.locator("#status")).to_have_text("Tokens renewed.")
    renewed = await page.evaluate(STORED_USER)
    assert json.loads(renewed)["refresh_token"] != json.loads(first)["refresh_token"]
    access_token = json.loads(renewed)["access_token"]

    # revocation, then the revoked token's 401 is readable by the app
    await page.get_by_role("button", name="Revoke tokens").click()
    await expect(page.locator("#status")).to_have_text("Tokens revoked.")
    status = await page.evaluate("""async ([url, token]) => {
        const r = await fetch(url + '/oauth2/userinfo', {headers: {Authorization: 'Bearer ' + token}});
        return [r.status, (await r.json()).error];
    }""", [server.url, access_token])
    assert status == [401, "invalid_token"]

    # sign-out: signoutRedirect -> end-session -> back to the app
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(spa + "/?state=*")  # the end-session endpoint redirected back, with the state
    await expect(page.locator("#status")).to_have_text("Signed out.")
    await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    assert not failed, failed

    # the same page on an origin nobody registered: the browser refuses it the answers
    other = f"http://127.0.0.1:{port}"
    await page.goto(other + "/")
    refused = await page.evaluate("""async (url) => {
        try { await fetch(url + '/oauth2/userinfo', {headers: {Authorization: 'Bearer x'}}); return 'read'; }
        catch (e) { return 'refused'; }
    }""", server.url)
    assert refused == "refused"
    discovery = await page.evaluate(
        "async (url) => (await (await fetch(url + '/.well-known/openid-configuration')).json()).issuer", server.url)
    assert discovery == server.url  # discovery is readable from any page
    await context.close()
