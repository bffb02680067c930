"""The device grant and token exchange against a live server, driven by a third-party client
(authlib's OAuth2Client: its fetch_token takes any grant_type and its parameters), with the
verification page answered over plain HTTP as a browser would (cookies, CSRF token), and the
exchanged token checked by introspection and by tokensrv.verify following the revocation feed."""
from __future__ import annotations

import asyncio
import re
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from prometheus_client import CollectorRegistry

from tests.helpers.http import add_client, post_form
from tests.helpers.verify import wait_for_revocation
from tokensrv.verify import RevokedToken, TokenVerifier

PASSWORD = "correct horse battery staple"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


class Browser:
    """The verification page over HTTP with a cookie jar: sign in once, then look up and decide."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def sign_in(self) -> None:
        resp = self.http.get("/device")
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login?"), resp.text
        login = resp.headers["location"]
        page = self.http.get(login)
        request_id = parse_qs(urlsplit(login).query)["request"][0]
        resp = self.http.post("/login", data={"request": request_id, "csrf_token": csrf_of(page.text),
                                              "username": "alice", "password": PASSWORD})
        assert resp.status_code == 303 and resp.headers["location"] == "/device", resp.text

    def look_up(self, user_code: str) -> httpx.Response:
        return self.http.get("/device", params={"user_code": user_code})

    def decide(self, user_code: str, action: str) -> str:
        page = self.look_up(user_code)
        assert page.status_code == 200 and "tokensrv-cli" in page.text, page.text
        resp = self.http.post("/device", data={"csrf_token": csrf_of(page.text), "user_code": user_code,
                                               "action": action})
        assert resp.status_code == 200, resp.text
        return resp.text


def discover(server: Any) -> dict[str, Any]:
    return httpx.get(server.url + "/.well-known/oauth-authorization-server").json()


@pytest.fixture
def device_server(start_server):
    # a long interval: two polls in a row are surely too fast, whatever the machine's load
    server = start_server(TOKENSRV_DEVICE_POLL_INTERVAL="30")
    server.cli("client", "add", "--id", "tokensrv-cli", "--public", "--grant-type", "device_code",
               "--scope", "openid", "--scope", "read", "--json")
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    return server


def start(meta: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(meta["device_authorization_endpoint"], data={"client_id": "tokensrv-cli", "scope": "read"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def poll_error(oauth: OAuth2Client, meta: dict[str, Any], device_code: str) -> str:
    with pytest.raises(OAuthError) as refused:
        oauth.fetch_token(meta["token_endpoint"], grant_type=DEVICE, device_code=device_code)
    return str(refused.value.error)


def test_device_grant_with_authlib(device_server):
    meta = discover(device_server)
    assert DEVICE in meta["grant_types_supported"]
    with Browser(device_server.url) as browser, \
            OAuth2Client("tokensrv-cli", token_endpoint_auth_method="none") as oauth:
        browser.sign_in()
        waiting = start(meta)
        assert poll_error(oauth, meta, waiting["device_code"]) == "authorization_pending"
        assert poll_error(oauth, meta, waiting["device_code"]) == "slow_down"  # within 30 s of the first

        approved = start(meta)
        assert "Device connected" in browser.decide(approved["user_code"].lower(), "approve")
        token = oauth.fetch_token(meta["token_endpoint"], grant_type=DEVICE, device_code=approved["device_code"])
        assert token["token_type"] == "Bearer" and token["scope"] == "read"
        assert poll_error(oauth, meta, approved["device_code"]) == "invalid_grant"  # the code is spent

        denied = start(meta)
        assert "Device not connected" in browser.decide(denied["user_code"], "deny")
        assert poll_error(oauth, meta, denied["device_code"]) == "access_denied"
    log = device_server.log()
    for secret in (waiting["device_code"], approved["device_code"], approved["user_code"], token["access_token"]):
        assert secret not in log


def test_user_code_guessing_is_throttled(device_server):
    meta = discover(device_server)
    with Browser(device_server.url) as browser:
        browser.sign_in()
        real = start(meta)
        statuses = [browser.look_up("BCDF-GHJK").status_code for _ in range(11)]  # LOGIN_MAX_FAILURES = 10
        assert statuses == [200] * 10 + [429]
        assert browser.look_up(real["user_code"]).status_code == 429  # the right code too, while throttled


@pytest.fixture
def exchange_server(live_server):
    web = add_client(live_server, "web", "--first-party", "--grant-type", "password", "--audience", "gateway",
               "--scope", "openid", "--scope", "orders:read", "--scope", "orders:write")
    live_server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    return live_server, web


async def test_token_exchange_with_authlib_and_logout_stops_it(exchange_server):
    server, web = exchange_server
    gateway = add_client(server, "gateway", "--grant-type", "client_credentials", "--grant-type",
                         "token_exchange", "--exchange-audience", "orders", "--scope", "orders:read")
    meta = discover(server)
    assert EXCHANGE in meta["grant_types_supported"]
    status, user = post_form(meta["token_endpoint"], {"grant_type": "password", "username": "alice",
                                                      "password": PASSWORD, "scope": "openid orders:read"},
                             "web", web)
    assert status == 200, user
    with OAuth2Client("gateway", gateway) as oauth:
        actor = oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")["access_token"]
        exchanged = oauth.fetch_token(meta["token_endpoint"], grant_type=EXCHANGE, subject_token=user["access_token"],
                                      subject_token_type=AT, audience="orders", actor_token=actor,
                                      actor_token_type=AT)
        assert exchanged["issued_token_type"] == AT and "refresh_token" not in exchanged
        with pytest.raises(OAuthError) as wider:
            oauth.fetch_token(meta["token_endpoint"], grant_type=EXCHANGE, subject_token=user["access_token"],
                              subject_token_type=AT, audience="orders", scope="orders:read orders:write")
        assert wider.value.error == "invalid_scope"
        with pytest.raises(OAuthError) as elsewhere:
            oauth.fetch_token(meta["token_endpoint"], grant_type=EXCHANGE, subject_token=user["access_token"],
                              subject_token_type=AT, audience="billing")
        assert elsewhere.value.error == "invalid_target"

        async with TokenVerifier(server.url, "orders", redis_url=server.redis_url,
                                 registry=CollectorRegistry()) as verifier:
            claims = await verifier.verify(exchanged["access_token"])
            assert claims["act"] == {"sub": "gateway"} and claims["sid"]
            # the user logs out of the subject token's session (RP-initiated, with the ID token)
            resp = await asyncio.to_thread(httpx.get, meta["end_session_endpoint"],
                                           params={"id_token_hint": user["id_token"]})
            assert resp.status_code == 200, resp.text
            await wait_for_revocation(verifier, "sid", claims["sid"])
            with pytest.raises(RevokedToken):
                await verifier.verify(exchanged["access_token"])
        described = oauth.introspect_token(meta["introspection_endpoint"], exchanged["access_token"]).json()
        assert described == {"active": False}
