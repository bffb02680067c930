"""The device flow end to end: `tokensrv login --device` runs as a subprocess and prints where to
go; headless Chromium opens that URL, signs in on the login page, sees which client asks for
what, approves; the CLI, polling meanwhile, prints the access token on standard output and
nothing else, and writes nothing to disk."""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
from playwright.async_api import expect

from tests.helpers.http import add_client
from tests.helpers.oauth import PASSWORD

READ_TIMEOUT = 60


async def test_cli_device_login_approved_in_a_browser(start_server, browser, tmp_path: Path):
    server = start_server(TOKENSRV_DEVICE_POLL_INTERVAL="1")
    server.cli("client", "add", "--id", "tokensrv-cli", "--public", "--grant-type", "device_code",
               "--scope", "openid", "--scope", "read", "--json")
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    rs_secret = add_client(server, "rs")  # a resource server, to introspect what the CLI got

    workdir = tmp_path / "cli"
    workdir.mkdir()
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokensrv", "login", "--device", "--issuer", server.url, "--scope", "read",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=workdir, env=server.env)
    try:
        assert cli.stderr is not None and cli.stdout is not None
        first = (await asyncio.wait_for(cli.stderr.readline(), READ_TIMEOUT)).decode()
        second = (await asyncio.wait_for(cli.stderr.readline(), READ_TIMEOUT)).decode()
        url = re.search(r"open (\S+)", first).group(1)  # type: ignore[union-attr]
        user_code = re.search(r"code ([A-Z]{4}-[A-Z]{4})", second).group(1)  # type: ignore[union-attr]
        assert url == f"{server.url}/device?user_code={user_code}"

        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(url)
        await expect(page.locator("h1")).to_have_text("Sign in")
        await page.get_by_label("Username").fill("alice")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("h1")).to_have_text("Connect this device?")
        await expect(page.locator("#device-client")).to_have_text("tokensrv-cli")
        await expect(page.locator("#device-scope")).to_have_text("read")
        await expect(page.locator("#device-code")).to_have_text(user_code)
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("h1")).to_have_text("Device connected")
        await context.close()

        out, err = await asyncio.wait_for(cli.communicate(), READ_TIMEOUT)
    finally:
        if cli.returncode is None:
            cli.kill()
            await cli.wait()
    assert cli.returncode == 0, err.decode()
    token = out.decode().strip()
    assert token.count(".") == 2 and "\n" not in token  # the access token alone, for $(...)
    assert list(workdir.iterdir()) == []  # nothing written where it ran
    async with httpx.AsyncClient() as http:
        described = (await http.post(server.url + "/oauth2/introspect", data={"token": token},
                                     auth=("rs", rs_secret))).json()
    assert described["active"] is True and described["client_id"] == "tokensrv-cli"
    assert described["scope"] == "read" and described["sid"]
    log = server.log()
    assert user_code not in log and token not in log  # no codes or tokens logged
    assert user_code.replace("-", "") not in log
