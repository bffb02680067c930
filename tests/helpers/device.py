"""The device authorization grant (RFC 8628) from the device and from the user's browser."""
from __future__ import annotations

from tests.helpers.sso import PASSWORD, login_page, submit


async def start(client, client_id="tokensrv-cli", **params):
    resp = await client.post("/oauth2/device_authorization", data={"client_id": client_id, **params})
    return resp.status, await resp.json()


async def signed_in(client, username="alice"):
    """Sign in through the device page: no session, so the login page, which comes back to /device."""
    resp = await client.get("/device", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?"), resp.headers
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf, username, PASSWORD)
    assert resp.status == 303 and resp.headers["Location"] == "/device", resp.headers


async def page(client, user_code=None):
    params = {"user_code": user_code} if user_code is not None else {}
    resp = await client.get("/device", params=params, allow_redirects=False)
    return resp.status, await resp.text()
