"""The device authorization grant (RFC 8628) from the device and from the user's browser."""
from __future__ import annotations

from tests.helpers.app import provider_of
from tests.helpers.sso import PASSWORD, csrf_of, login_page, submit
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


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


async def add_device_client(client, client_id="tokensrv-cli", grant_types=("device_code", "refresh_token")):
    await admin.add_client(provider_of(client), client_id, ClientMetadata(public=True, grant_types=grant_types,
                           scope=("openid", "read")))
    return client_id


async def poll(client, device_code, client_id="tokensrv-cli"):
    resp = await client.post("/oauth2/token", data={"grant_type": DEVICE, "device_code": device_code,
                                                    "client_id": client_id})
    return resp.status, await resp.json()


async def decide(client, user_code, action, headers=None):
    _, html = await page(client)
    resp = await client.post("/device", data={"csrf_token": csrf_of(html), "user_code": user_code,
                                              "action": action}, headers=headers or {}, allow_redirects=False)
    return resp.status, await resp.text()
