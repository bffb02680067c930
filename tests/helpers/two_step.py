"""TOTP on the account page over HTTP (the test client as the browser): the secret read off the
page, the code computed from it, enrolment."""
from __future__ import annotations

import re
from html import unescape

import pyotp

from tests.helpers.sso import begin, csrf_of, login_page, submit


def secret_on(html: str) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert found, html
    return found.group(1).replace(" ", "")


def recovery_codes_on(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", html)


def code_at(secret: str, now: float) -> str:
    return pyotp.TOTP(secret).at(now)


async def signed_in_account(client, app):
    """alice signs in (password only) and opens /account: its CSRF token."""
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    assert (await submit(client, request_id, csrf)).status == 303
    resp = await client.get("/account")
    assert resp.status == 200
    return csrf_of(await resp.text())


async def enrol(client, clock, app) -> tuple[str, list[str]]:
    csrf = await signed_in_account(client, app)
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "totp-start"})
    html = await resp.text()
    secret = secret_on(html)
    assert f"secret={secret}" in unescape(html) and "<svg" in html  # the otpauth URI and the QR code
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "totp-confirm",
                                               "code": code_at(secret, clock())})
    html = await resp.text()
    assert 'id="totp-status">On<' in html, html
    codes = recovery_codes_on(html)
    assert len(codes) == 10
    return secret, codes
