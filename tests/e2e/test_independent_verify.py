"""Tokens from a live server, verified offline by an independent library: PyJWT with its
PyJWKClient fetching the published JWKS (no tokensrv code on the verifying side)."""
from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request

import jwt
import pytest

PASSWORD = "correct horse battery staple"


def post_token(server, client_id: str, secret: str, **form: str) -> dict:
    request = urllib.request.Request(server.url + "/oauth2/token", data=urllib.parse.urlencode(form).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as resp:
        return dict(json.load(resp))


def verify(server, token: str, audience: str) -> dict:
    jwks_uri = json.load(urllib.request.urlopen(server.url + "/.well-known/openid-configuration"))["jwks_uri"]
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    return dict(jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=server.url,
                           options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]}))


def test_client_credentials_token_verifies_offline(live_server):
    secret = json.loads(live_server.cli("client", "add", "--id", "svc", "--grant-type", "client_credentials",
                                        "--scope", "read", "--audience", "orders", "--json").stdout)["client_secret"]
    token = post_token(live_server, "svc", secret, grant_type="client_credentials")["access_token"]
    claims = verify(live_server, token, audience="orders")
    assert claims["sub"] == claims["client_id"] == "svc" and claims["scope"] == "read"
    with pytest.raises(jwt.InvalidAudienceError):
        verify(live_server, token, audience="billing")
    head, body, signature = token.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered["scope"] = "read admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(tampered).encode()).decode().rstrip("=")
    with pytest.raises(jwt.InvalidSignatureError):
        verify(live_server, f"{head}.{forged_body}.{signature}", audience="orders")


def test_user_token_verifies_offline_with_login_claims(live_server):
    secret = json.loads(live_server.cli("client", "add", "--id", "app", "--first-party", "--grant-type", "password",
                                        "--grant-type", "refresh_token", "--json").stdout)["client_secret"]
    user = json.loads(live_server.cli("user", "add", "alice", "--role", "staff", "--password-stdin", "--json",
                                      input=PASSWORD + "\n").stdout)
    issued = post_token(live_server, "app", secret, grant_type="password", username="alice", password=PASSWORD)
    claims = verify(live_server, issued["access_token"], audience="app")
    assert claims["sub"] == user["sub"] and claims["roles"] == ["staff"]
    assert claims["auth_time"] <= claims["iat"] and claims["sid"]
    refreshed = post_token(live_server, "app", secret, grant_type="refresh_token",
                           refresh_token=issued["refresh_token"])
    again = verify(live_server, refreshed["access_token"], audience="app")
    assert again["sid"] == claims["sid"] and again["jti"] != claims["jti"]
