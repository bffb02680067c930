"""RFC 8628 device authorization grant: the endpoint, the verification page on the SSO login, the
polling answers with the interval enforced per device code, and the attacks (user-code guessing,
device-code reuse, polling too fast, denial, expiry, cross-site approval)."""
from __future__ import annotations

import dataclasses
import ipaddress
import re

import pytest

from tests.helpers.app import provider_of
from tests.helpers.device import DEVICE, add_device_client, decide, page, poll, signed_in, start
from tests.helpers.sso import add_user, csrf_of, login_page, query_of, submit
from tokensrv.oauth.own_tokens import read_own_jwt
from tokensrv.store import keyspace

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


async def test_the_device_authorization_answer(client, redis):
    await add_device_client(client)
    status, body = await start(client, scope="read")
    assert status == 200, body
    assert USER_CODE.match(body["user_code"]), body["user_code"]
    assert body["verification_uri"] == "http://127.0.0.1:8080/device"
    assert body["verification_uri_complete"] == "http://127.0.0.1:8080/device?user_code=" + body["user_code"]
    assert (body["expires_in"], body["interval"]) == (600, 5)
    assert len(body["device_code"]) >= 43
    keys = await redis.keys(keyspace.PREFIX + "*device*")
    assert keys and not any(body["device_code"] in k for k in keys)  # stored as a digest only
    assert not any(body["user_code"] in k for k in await redis.keys("*"))
    meta = await (await client.get("/.well-known/openid-configuration")).json()
    assert meta["device_authorization_endpoint"] == "http://127.0.0.1:8080/oauth2/device_authorization"
    assert DEVICE in meta["grant_types_supported"]
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in meta["grant_types_supported"]


async def test_a_client_without_the_grant_and_a_wider_scope_are_refused(client):
    await add_device_client(client, "web", grant_types=("refresh_token",))
    await add_device_client(client)
    assert (await start(client, "web"))[1]["error"] == "unauthorized_client"
    assert (await start(client, scope="admin"))[1]["error"] == "invalid_scope"


async def test_sign_in_approve_and_the_tokens_belong_to_the_session(client, clock):
    await add_device_client(client)
    await add_user(client)
    _, started = await start(client, scope="openid read")
    assert (await poll(client, started["device_code"]))[1]["error"] == "authorization_pending"

    # verification_uri_complete with no session: the login page, then back to the confirmation
    resp = await client.get("/device", params={"user_code": started["user_code"]}, allow_redirects=False)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    assert "to connect a device" in await (await client.get(resp.headers["Location"])).text()
    resp = await submit(client, request_id, csrf)
    assert resp.headers["Location"] == "/device?user_code=" + started["user_code"]
    status, html = await page(client, query_of(resp.headers["Location"])["user_code"])
    assert status == 200 and "tokensrv-cli" in html and "openid read" in html and "Approve" in html

    status, html = await decide(client, started["user_code"], "approve")
    assert status == 200 and "Device connected" in html
    clock.advance(5)
    status, tokens = await poll(client, started["device_code"])
    assert status == 200, tokens
    assert {"access_token", "refresh_token", "id_token"} <= tokens.keys()
    claims = read_own_jwt(provider_of(client), tokens["access_token"])
    assert claims["scope"] == "openid read" and claims["sid"]

    clock.advance(5)
    assert (await poll(client, started["device_code"]))[1]["error"] == "invalid_grant"  # single use

    # logout of the approving session revokes what the device got
    resp = await client.get("/oauth2/logout")
    await client.post("/oauth2/logout", data={"csrf_token": csrf_of(await resp.text())})
    _, sid_revoked, _ = await provider_of(client).store.denylist.denied("", claims["sid"], "")
    assert sid_revoked
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": "tokensrv-cli",
                                                    "refresh_token": tokens["refresh_token"]})
    assert (await resp.json())["error"] == "invalid_grant"


async def test_user_codes_are_read_case_and_dash_insensitively(client):
    await add_device_client(client)
    await add_user(client)
    await signed_in(client)
    _, started = await start(client)
    typed = started["user_code"].replace("-", " ").lower()
    status, html = await page(client, typed)
    assert status == 200 and "Approve" in html
    status, html = await page(client, "AEIO-UAEI")  # vowels: never a code, not looked up
    assert "not valid" in html


async def test_polling_too_fast_slows_down_and_the_interval_grows(client, clock):
    await add_device_client(client)
    _, started = await start(client)
    code = started["device_code"]
    assert (await poll(client, code))[1]["error"] == "authorization_pending"
    status, body = await poll(client, code)
    assert (status, body["error"]) == (400, "slow_down")  # interval now 10
    clock.advance(5)
    assert (await poll(client, code))[1]["error"] == "slow_down"  # 5 < 10; interval now 15
    clock.advance(14)
    assert (await poll(client, code))[1]["error"] == "slow_down"  # 14 < 15; interval now 20
    clock.advance(20)
    assert (await poll(client, code))[1]["error"] == "authorization_pending"


async def test_denied_then_always_denied(client, clock):
    await add_device_client(client)
    await add_user(client)
    await signed_in(client)
    _, started = await start(client)
    status, html = await decide(client, started["user_code"], "deny")
    assert "Device not connected" in html
    for _ in range(2):
        clock.advance(5)
        status, body = await poll(client, started["device_code"])
        assert (status, body["error"]) == (400, "access_denied")
    # the user code is decided once: approving it afterwards does nothing
    _, html = await decide(client, started["user_code"], "approve")
    assert "not valid" in html


async def test_an_expired_device_code(client, clock):
    await add_device_client(client)
    await add_user(client)
    await signed_in(client)
    _, started = await start(client)
    clock.advance(601)
    _, html = await page(client, started["user_code"])
    assert "not valid" in html and "Approve" not in html
    status, body = await poll(client, started["device_code"])
    assert (status, body["error"]) == (400, "expired_token")


async def test_another_client_or_a_made_up_code_gets_invalid_grant(client):
    await add_device_client(client)
    await add_device_client(client, "other")
    _, started = await start(client)
    assert (await poll(client, started["device_code"], "other"))[1]["error"] == "invalid_grant"
    assert (await poll(client, "x" * 43))[1]["error"] == "invalid_grant"
    assert (await poll(client, "x" * 5000))[1]["error"] == "invalid_grant"
    assert (await poll(client, started["device_code"]))[1]["error"] == "authorization_pending"


async def test_approval_needs_the_csrf_token_and_a_same_origin_post(client, clock):
    await add_device_client(client)
    await add_user(client)
    await signed_in(client)
    _, started = await start(client)
    status, _html = await decide(client, started["user_code"], "approve", {"Origin": "https://evil.example"})
    assert status == 403
    resp = await client.post("/device", data={"csrf_token": "forged", "user_code": started["user_code"],
                                              "action": "approve"})
    assert resp.status == 400
    clock.advance(5)
    assert (await poll(client, started["device_code"]))[1]["error"] == "authorization_pending"


async def test_user_code_guessing_is_throttled_per_address(client, settings):
    await add_device_client(client)
    await add_user(client)
    await signed_in(client)
    _, started = await start(client)
    limit = settings.login_max_failures
    for _ in range(limit):
        status, html = await page(client, "BCDF-BCDF")
        assert status == 200 and "not valid" in html
    status, html = await page(client, "BCDF-BCDF")
    assert status == 429
    # what the person did wrong, not a sign-in failure they never made
    assert "Too many wrong codes entered" in html and "sign-in" not in html
    status, _ = await page(client, started["user_code"])  # even the right code, while throttled
    assert status == 429


async def test_a_global_cap_on_wrong_user_codes(make_client, settings):
    proxies = (ipaddress.ip_network("127.0.0.1/32"),)
    client = await make_client(dataclasses.replace(settings, trusted_proxies=proxies,
                                                   device_user_code_max_failures=3))
    await add_device_client(client)
    await add_user(client)
    await signed_in(client)
    for n in range(3):  # three addresses, one wrong guess each: under every per-address limit
        resp = await client.get("/device", params={"user_code": "BCDF-BCDF"},
                                headers={"X-Forwarded-For": f"192.0.2.{n}"})
        assert resp.status == 200
    resp = await client.get("/device", params={"user_code": "BCDF-BCDF"},
                            headers={"X-Forwarded-For": "192.0.2.99"})
    assert resp.status == 429 and "Retry-After" in resp.headers
