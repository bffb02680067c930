"""authlib's OAuth 2.0 client runs the authorization code flow with PKCE against a real server,
finding every endpoint by discovery and driving the login form over HTTP like a browser would."""
from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers.code_flow import PASSWORD, sign_in_on_the_form

REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the test reads the redirect itself


@pytest.fixture
def registered(live_server):
    live_server.cli("client", "add", "--id", "webapp", "--public", "--redirect-uri", REDIRECT,
                    "--scope", "openid", "--scope", "profile", "--scope", "email", "--json")
    live_server.cli("user", "add", "alice", "--email", "alice@example.org", "--password-stdin",
                    input=PASSWORD + "\n")
    return live_server


async def test_authlib_completes_the_code_flow_with_pkce(registered):
    server = registered
    async with AsyncOAuth2Client("webapp", scope="openid profile email", redirect_uri=REDIRECT,
                                 code_challenge_method="S256", token_endpoint_auth_method="none") as oauth:
        discovery = server.url + "/.well-known/openid-configuration"
        meta = (await oauth.request("GET", discovery, withhold_token=True)).json()
        assert meta["authorization_response_iss_parameter_supported"] is True
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
        url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                    nonce=nonce)
        assert "code_challenge=" in url and "code_challenge_method=S256" in url
        callback = await sign_in_on_the_form(oauth, server.url, url)
        assert callback.startswith(REDIRECT + "?")
        answer = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        assert answer["iss"] == meta["issuer"] and answer["state"] == state  # RFC 9207
        token = await oauth.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state,
                                        code_verifier=verifier)
        assert token["token_type"] == "Bearer" and token["refresh_token"]

        jwks = (await oauth.request("GET", meta["jwks_uri"], withhold_token=True)).json()
        keys = KeySet.import_key_set(jwks)
        id_token = jwt.decode(token["id_token"], keys)
        assert id_token.header["typ"] == "JWT"
        claims = id_token.claims
        assert claims["iss"] == meta["issuer"] and claims["aud"] == "webapp" and claims["nonce"] == nonce
        assert {"sub", "exp", "iat", "auth_time", "sid", "at_hash"} <= claims.keys()

        info = (await oauth.get(meta["userinfo_endpoint"])).json()  # authlib adds the bearer token
        assert info == {"sub": claims["sub"], "preferred_username": "alice", "name": "alice",
                        "email": "alice@example.org", "email_verified": False}

        refreshed = await oauth.refresh_token(meta["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]

        # the code was single use: presenting it again is refused and revokes what it gave
        with pytest.raises(OAuthError) as replay:
            await oauth.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state,
                                    code_verifier=verifier)
        assert replay.value.error == "invalid_grant"
        with pytest.raises(OAuthError):
            await oauth.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])


async def test_authlib_with_a_wrong_verifier_gets_invalid_grant(registered):
    server = registered
    async with AsyncOAuth2Client("webapp", scope="openid", redirect_uri=REDIRECT, code_challenge_method="S256",
                                 token_endpoint_auth_method="none") as oauth:
        meta = (await oauth.request("GET", server.url + "/.well-known/oauth-authorization-server",
                                    withhold_token=True)).json()
        url, state = oauth.create_authorization_url(meta["authorization_endpoint"],
                                                    code_verifier=secrets.token_urlsafe(48))
        callback = await sign_in_on_the_form(oauth, server.url, url)
        with pytest.raises(OAuthError) as wrong:
            await oauth.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state,
                                    code_verifier=secrets.token_urlsafe(48))
        assert wrong.value.error == "invalid_grant"
