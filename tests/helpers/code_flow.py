"""The authorization code flow as a third-party client (authlib) walks it over HTTP."""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.helpers.oauth import PASSWORD  # the one password of the tests' users


async def sign_in_on_the_form(oauth: AsyncOAuth2Client, server_url: str, authorization_url: str) -> str:
    """Follow the authorization URL to the login page, post the form (and Allow on the consent page,
    for a client that asks), return the callback URL."""
    resp = await oauth.request("GET", authorization_url, withhold_token=True)
    assert resp.status_code == 303, resp.text
    login_url = urljoin(server_url, resp.headers["location"])
    page = await oauth.request("GET", login_url, withhold_token=True)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    form = {name: value for name, value in re.findall(r'name="(request|csrf_token)" value="([^"]+)"', page.text)}
    assert set(form) == {"request", "csrf_token"}
    resp = await oauth.request("POST", urljoin(server_url, "/login"), withhold_token=True,
                               data={**form, "username": "alice", "password": PASSWORD})
    assert resp.status_code == 303, resp.text
    if urlsplit(resp.headers["location"]).path == "/consent":  # a third-party client: the user allows it
        page = await oauth.request("GET", urljoin(server_url, resp.headers["location"]), withhold_token=True)
        form = {name: value for name, value in re.findall(r'name="(request|csrf_token)" value="([^"]+)"', page.text)}
        resp = await oauth.request("POST", urljoin(server_url, "/consent"), withhold_token=True,
                                   data={**form, "decision": "allow"})
        assert resp.status_code == 303, resp.text
    return resp.headers["location"]
