"""A real third-party OAuth client (authlib's OAuth2Client over httpx) against a live server:
it finds the endpoints by discovery, obtains tokens with client_credentials and the password
grant, refreshes, introspects and revokes."""
from __future__ import annotations

import json

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

PASSWORD = "correct horse battery staple"


def discover(server) -> dict:
    return httpx.get(server.url + "/.well-known/oauth-authorization-server").json()


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials(live_server, auth_method):
    created = json.loads(live_server.cli("client", "add", "--id", "reports", "--grant-type", "client_credentials",
                                         "--scope", "read", "--scope", "write", "--json").stdout)
    meta = discover(live_server)
    assert auth_method in meta["token_endpoint_auth_methods_supported"]
    with OAuth2Client(created["client_id"], created["client_secret"], scope="read",
                      token_endpoint_auth_method=auth_method) as oauth:
        token = oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "read"
        assert "refresh_token" not in token and token["expires_at"] > 0
        described = oauth.introspect_token(meta["introspection_endpoint"], token["access_token"]).json()
        assert described["active"] is True and described["client_id"] == "reports"
        assert oauth.revoke_token(meta["revocation_endpoint"], token["access_token"]).status_code == 200
        assert oauth.introspect_token(meta["introspection_endpoint"], token["access_token"]).json() == {"active": False}


def test_password_grant_then_refresh_then_replay(live_server):
    created = json.loads(live_server.cli("client", "add", "--id", "desktop", "--first-party", "--grant-type",
                                         "password", "--grant-type", "refresh_token", "--scope", "profile",
                                         "--json").stdout)
    live_server.cli("user", "add", "alice", "--role", "staff", "--password-stdin", input=PASSWORD + "\n")
    meta = discover(live_server)
    with OAuth2Client(created["client_id"], created["client_secret"], scope="profile") as oauth:
        first = oauth.fetch_token(meta["token_endpoint"], username="alice", password=PASSWORD)
        assert first["refresh_token"] and first["scope"] == "profile"
        second = oauth.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
        third = oauth.refresh_token(meta["token_endpoint"], refresh_token=second["refresh_token"])
        with pytest.raises(OAuthError) as replay:
            oauth.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
        assert replay.value.error == "invalid_grant"
        with pytest.raises(OAuthError):  # the replay killed the family
            oauth.refresh_token(meta["token_endpoint"], refresh_token=third["refresh_token"])
        described = oauth.introspect_token(meta["introspection_endpoint"], third["access_token"]).json()
        assert described == {"active": False}
        with pytest.raises(OAuthError) as wrong:
            oauth.fetch_token(meta["token_endpoint"], username="alice", password="not the password")
        assert wrong.value.error == "invalid_grant"
