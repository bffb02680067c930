"""Edges: the security headers of every HTML page (OWASP clickjacking defence, CSP Level 2
frame-ancestors, RFC 7034 X-Frame-Options) and X-Forwarded-For believed only from trusted proxies
(RFC 7239 §8.3, RFC 9700 §4.x: rate limits must not be dodged by a spoofed header)."""
from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers.sso import (
    add_app,
    add_user,
    begin,
    login_page,
    tokens_for,
)
from tokensrv.config import Settings

pytestmark = pytest.mark.integration


def has_security_headers(resp: ClientResponse) -> None:
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_every_html_page_and_redirect_sends_the_security_headers(client: TestClient) -> None:
    """Clickjacking of the login form (OWASP), referrer leaks of the code (RFC 9700 §4.2.4)."""
    app = await add_app(client)
    await add_user(client)
    _, redirect = await begin(client, app, prompt="login")
    page = await client.get(redirect.headers["Location"])
    responses = [redirect, page, await client.get("/login?request=nope"),
                 await client.get("/oauth2/authorize", params={"client_id": "nobody"}),
                 await client.get("/oauth2/logout")]
    await tokens_for(client, app)
    responses.append(await client.get("/oauth2/logout"))
    for resp in responses:
        assert resp.status in (200, 303, 400), await resp.text()
        has_security_headers(resp)


async def failures_until_429(client: TestClient, forwarded: list[str]) -> list[int]:
    """Wrong passwords for always-new usernames (so only the address limit can trip), each from
    the X-Forwarded-For value given."""
    app = await add_app(client, f"web-{len(forwarded)}")
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    statuses = []
    for n, address in enumerate(forwarded):
        resp = await client.post("/login", headers={"X-Forwarded-For": address}, allow_redirects=False, data={
            "request": request_id, "csrf_token": csrf, "username": f"user{n}", "password": "wrong"})
        statuses.append(resp.status)
    return statuses


@pytest.fixture
def limited() -> dict[str, Any]:
    return {"login_max_failures": 3}


async def test_a_spoofed_forwarded_for_is_ignored_without_a_trusted_proxy(make_client: Any, settings: Settings,
                                                                         limited: dict[str, Any]) -> None:
    client = await make_client(settings, **limited)
    statuses = await failures_until_429(client, [f"203.0.113.{n}" for n in range(5)])
    assert statuses == [200, 200, 200, 429, 429]  # keyed on the real peer, whatever the header says


async def test_the_forwarded_address_is_used_behind_a_trusted_proxy(make_client: Any, settings: Settings,
                                                                   limited: dict[str, Any]) -> None:
    client = await make_client(settings, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),), **limited)
    statuses = await failures_until_429(client, ["203.0.113.7"] * 4 + ["198.51.100.9", "203.0.113.7"])
    assert statuses == [200, 200, 200, 429, 200, 429]  # one address is limited, another is not
    # a client cannot hide behind a forged hop in front of the trusted proxy's entry
    statuses = await failures_until_429(client, ["198.51.100.1, 203.0.113.7"])
    assert statuses == [429]
