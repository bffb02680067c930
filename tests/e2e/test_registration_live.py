"""Dynamic client registration against a live `tokensrv serve`, as an operator and a client see
it: `tokensrv client token` mints the initial access token, a client registers over HTTP (the
curl request of docs/guides/clients.md), authlib's OAuth2Client then runs the code flow and client_credentials with
the registered credentials, `tokensrv client list` shows the client; `client add --name` and its
mistakes; and no token or secret in the server's log."""
from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from typing import Any

import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.helpers.cli import assert_one_line_error, cli_json
from tests.helpers.code_flow import sign_in_on_the_form
from tests.helpers.oauth import PASSWORD

REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the test reads the redirect itself


def http_json(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """What `curl -X METHOD -H 'Authorization: Bearer TOKEN' --json BODY URL` does."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


@pytest.fixture
def server(start_server):
    return start_server(TOKENSRV_REGISTRATION="on")


def test_off_by_default_a_live_server_has_no_registration_endpoint(live_server):
    token = cli_json(live_server, "client", "token")["initial_access_token"]
    status, body = http_json("POST", live_server.url + "/oauth2/register", token, {"redirect_uris": [REDIRECT]})
    assert status == 404 and body["error"] == "not_found"


async def test_a_client_registers_itself_then_authlib_signs_a_user_in_and_gets_its_own_tokens(server):
    minted = cli_json(server, "client", "token", "--ttl", "10m")
    assert set(minted) == {"initial_access_token", "expires_at", "uses"} and minted["uses"] == 1
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    async with AsyncOAuth2Client() as http:
        meta = (await http.request("GET", server.url + "/.well-known/openid-configuration",
                                   withhold_token=True)).json()
    status, reg = http_json("POST", meta["registration_endpoint"], minted["initial_access_token"], {
        "client_name": "Reports", "redirect_uris": [REDIRECT], "scope": "openid profile",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_post"})
    assert status == 201, reg
    client_id, secret = reg["client_id"], reg["client_secret"]

    async with AsyncOAuth2Client(client_id, secret, scope="openid profile", redirect_uri=REDIRECT,
                                 code_challenge_method="S256",
                                 token_endpoint_auth_method="client_secret_post") as oauth:
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                    nonce=secrets.token_urlsafe(12))
        callback = await sign_in_on_the_form(oauth, server.url, url)
        token = await oauth.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state,
                                        code_verifier=verifier)
        assert token["token_type"] == "Bearer" and token["id_token"] and token["refresh_token"]
        info = (await oauth.get(meta["userinfo_endpoint"])).json()
        assert info["preferred_username"] == "alice"
        own = await oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert own["scope"] == "openid profile" and "refresh_token" not in own

    listed = {c["client_id"]: c for c in cli_json(server, "client", "list")}
    assert listed[client_id]["registered"] is True and listed[client_id]["client_name"] == "Reports"
    assert "REGISTERED" in server.cli("client", "list").stdout.splitlines()[0]

    status, _ = http_json("DELETE", reg["registration_client_uri"], reg["registration_access_token"])
    assert status == 204
    assert client_id not in {c["client_id"] for c in cli_json(server, "client", "list")}
    log = server.log()
    for value in (minted["initial_access_token"], secret, reg["registration_access_token"], token["access_token"]):
        assert value not in log
    assert "Traceback" not in log


def test_an_initial_access_token_with_uses_then_used_up(server):
    token = cli_json(server, "client", "token", "--uses", "2", "--ttl", "3600")["initial_access_token"]
    metadata = {"grant_types": ["client_credentials"], "response_types": []}
    url = server.url + "/oauth2/register"
    assert [http_json("POST", url, token, metadata)[0] for _ in range(3)] == [201, 201, 401]
    assert sum(c["registered"] for c in cli_json(server, "client", "list")) == 2


def test_client_add_with_a_name_and_links(live_server):
    cli_json(live_server, "client", "add", "--id", "crm", "--public", "--redirect-uri", "https://crm.example/cb",
             "--name", "Customer records", "--logo-uri", "https://crm.example/logo.png",
             "--policy-uri", "https://crm.example/privacy", "--tos-uri", "https://crm.example/tos")
    shown = cli_json(live_server, "client", "show", "crm")
    assert shown["client_name"] == "Customer records" and shown["logo_uri"] == "https://crm.example/logo.png"
    assert shown["policy_uri"] == "https://crm.example/privacy" and shown["tos_uri"] == "https://crm.example/tos"
    assert shown["registered"] is False


@pytest.mark.parametrize("args, words", [
    (["client", "add", "--id", "x", "--name", ""], ["client_name"]),
    (["client", "add", "--id", "x", "--logo-uri", "http://cdn.example/l.png"], ["logo_uri", "https"]),
    (["client", "add", "--id", "x", "--policy-uri", "javascript:alert(1)"], ["policy_uri"]),
    (["client", "token", "--ttl", "soon"], ["--ttl"]),
    (["client", "token", "--ttl", "90d"], ["--ttl"]),
    (["client", "token", "--uses", "0"], ["--uses"]),
])
def test_mistakes_are_one_line(live_server, args, words):
    assert_one_line_error(live_server.cli(*args, check=False), *words)
