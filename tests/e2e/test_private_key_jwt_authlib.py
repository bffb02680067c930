"""private_key_jwt with a real third-party client: authlib's `PrivateKeyJWT` against a live
`tokensrv serve`, the client registered with the CLI (`--jwks-file`, `--jwks-uri` served by a real
HTTP server in the test); a replayed assertion refused; client_secret_jwt (not offered) refused;
the CLI's one-line refusals of private keys and unsafe URIs."""
from __future__ import annotations

import json

import httpx
import pytest
from aiohttp import web
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import KeySet, RSAKey

from tests.helpers.cli import assert_one_line_error, cli_json
from tests.helpers.ports import free_port

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def discover(server) -> dict:
    return httpx.get(server.url + "/.well-known/openid-configuration").json()


@pytest.fixture
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


@pytest.fixture
def jwks_file(tmp_path, signing_key):
    path = tmp_path / "public.jwks.json"
    path.write_text(json.dumps(KeySet([signing_key]).as_dict(private=False)))
    return path


def test_authlib_private_key_jwt_gets_introspects_and_revokes_a_token(live_server, jwks_file, signing_key):
    created = cli_json(live_server, "client", "add", "--id", "signed", "--auth-method", "private_key_jwt",
                       "--jwks-file", str(jwks_file), "--grant-type", "client_credentials", "--scope", "read")
    assert created == {"client_id": "signed", "token_endpoint_auth_method": "private_key_jwt"}
    shown = cli_json(live_server, "client", "show", "signed")
    assert shown["token_endpoint_auth_method"] == "private_key_jwt" and shown["jwks"]["keys"][0]["kid"]
    assert "d" not in shown["jwks"]["keys"][0]  # public members only
    listed = cli_json(live_server, "client", "list")
    assert listed[0]["token_endpoint_auth_method"] == "private_key_jwt"

    meta = discover(live_server)
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert "RS256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    with OAuth2Client("signed", signing_key, scope="read", token_endpoint_auth_method="private_key_jwt",
                      revocation_endpoint_auth_method="private_key_jwt") as oauth:
        oauth.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"]))
        token = oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "read"
        again = oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")  # a fresh jti each time
        assert again["access_token"] != token["access_token"]
        described = oauth.introspect_token(meta["introspection_endpoint"], token["access_token"]).json()
        assert described["active"] is True and described["client_id"] == "signed"
        assert oauth.revoke_token(meta["revocation_endpoint"], token["access_token"]).status_code == 200
        assert oauth.introspect_token(meta["introspection_endpoint"], token["access_token"]).json() == {"active": False}


def test_a_replayed_authlib_assertion_is_refused(live_server, jwks_file, signing_key):
    live_server.cli("client", "add", "--id", "signed", "--auth-method", "private_key_jwt",
                    "--jwks-file", str(jwks_file), "--grant-type", "client_credentials")
    token_endpoint = discover(live_server)["token_endpoint"]
    assertion = private_key_jwt_sign(signing_key, "signed", token_endpoint)
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}
    assert httpx.post(token_endpoint, data=form).status_code == 200
    replay = httpx.post(token_endpoint, data=form)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert assertion not in live_server.log()  # never the assertion itself


def test_authlib_client_secret_jwt_is_refused(live_server):
    created = cli_json(live_server, "client", "add", "--id", "hmac", "--grant-type", "client_credentials")
    meta = discover(live_server)
    assert "client_secret_jwt" not in meta["token_endpoint_auth_methods_supported"]
    with OAuth2Client("hmac", created["client_secret"], token_endpoint_auth_method="client_secret_jwt") as oauth:
        oauth.register_client_auth_method(ClientSecretJWT(meta["token_endpoint"]))
        with pytest.raises(OAuthError) as refused:
            oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert refused.value.error == "invalid_client"


async def test_authlib_with_a_jwks_uri_served_over_http(live_server, signing_key):
    fetches = []

    async def jwks(request: web.Request) -> web.Response:
        fetches.append(request.path)
        return web.json_response(KeySet([signing_key]).as_dict(private=False))

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        live_server.cli("client", "add", "--id", "remote-keys", "--auth-method", "private_key_jwt",
                        "--jwks-uri", f"http://127.0.0.1:{port}/jwks.json", "--grant-type", "client_credentials")
        meta = discover(live_server)
        async with AsyncOAuth2Client("remote-keys", signing_key, token_endpoint_auth_method="private_key_jwt") as oauth:
            oauth.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"]))
            for _ in range(3):
                token = await oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
                assert token["token_type"] == "Bearer"
        assert fetches == ["/jwks.json"]  # fetched once, then cached
        stranger = RSAKey.generate_key(2048, auto_kid=True)  # an unknown kid: one refetch at most
        async with AsyncOAuth2Client("remote-keys", stranger, token_endpoint_auth_method="private_key_jwt") as oauth:
            oauth.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"]))
            for _ in range(3):
                with pytest.raises(OAuthError) as refused:
                    await oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
                assert refused.value.error == "invalid_client"
        assert len(fetches) <= 2
    finally:
        await runner.cleanup()


def test_cli_refuses_private_keys_unsafe_uris_and_mixed_methods(live_server, tmp_path, signing_key, jwks_file):
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [signing_key.as_dict(private=True)]}))
    not_json = tmp_path / "junk.json"
    not_json.write_text("-----BEGIN PRIVATE KEY-----")
    mistakes = [
        (["--jwks-file", str(private)], ["private"]),
        (["--jwks-file", str(not_json)], ["not JSON"]),
        (["--jwks-file", str(tmp_path / "missing.json")], ["cannot read"]),
        (["--jwks-uri", "http://keys.example.com/jwks.json"], ["https"]),
        (["--jwks-uri", "file:///etc/passwd"], ["https"]),
        ([], ["exactly one"]),
        (["--jwks-file", str(jwks_file), "--jwks-uri", "https://keys.example.com/jwks.json"], ["exactly one"]),
    ]
    for args, words in mistakes:
        result = live_server.cli("client", "add", "--id", "k", "--auth-method", "private_key_jwt",
                                 "--grant-type", "client_credentials", *args, check=False)
        assert_one_line_error(result, *words)
        assert signing_key.as_dict(private=True)["d"] not in result.stderr
    assert_one_line_error(live_server.cli("client", "add", "--id", "k", "--jwks-file", str(jwks_file),
                                          check=False), "private_key_jwt")
    assert cli_json(live_server, "client", "list") == []
