"""Discovery advertises exactly what works: every advertised client authentication method and
assertion algorithm is accepted at its endpoint, and the ones it leaves out are refused."""
from __future__ import annotations

import pytest
from joserfc.jwk import OctKey

from tests.helpers.app import provider_of
from tests.helpers.assertion import assertion_form, claims_for, new_key, public_jwks, sign
from tests.helpers.oauth import add_client, basic, post
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

ENDPOINTS = {"token": "/oauth2/token", "revocation": "/oauth2/revoke", "introspection": "/oauth2/introspect"}
NOT_ADVERTISED_ALGS = ["HS256", "HS384", "HS512", "RS384", "RS512", "PS384", "ES384"]


@pytest.fixture
async def meta(client):
    return await (await client.get("/.well-known/openid-configuration")).json()


async def register_signed(client, client_id, alg):
    key = new_key("RS256" if alg.startswith("HS") else alg)
    await admin.add_client(provider_of(client), client_id, ClientMetadata(
        grant_types=("client_credentials",), token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key)))
    return key


async def credentials_for(client, method, endpoint, client_id="c"):
    """(form, headers) that authenticate a fresh client with `method` at `endpoint`."""
    p = provider_of(client)
    if method == "none":
        await admin.add_client(p, client_id, ClientMetadata(public=True, redirect_uris=("http://127.0.0.1:9/cb",),
                               grant_types=()))
        return {"client_id": client_id}, {}
    if method == "private_key_jwt":
        key = await register_signed(client, client_id, "RS256")
        aud = p.settings.issuer + ENDPOINTS[endpoint]
        return assertion_form(sign(key, claims_for(client_id, aud, p.now()))), {}
    registered = await add_client(client, client_id)
    if method == "client_secret_basic":
        return {}, registered.basic
    assert method == "client_secret_post", method
    return {"client_id": client_id, "client_secret": registered.secret or ""}, {}


async def call(client, endpoint, form, headers):
    params = {"token": "not-a-token"} if endpoint != "token" else {"grant_type": "refresh_token",
                                                                     "refresh_token": "not-a-token"}
    return await post(client, ENDPOINTS[endpoint], {**params, **form}, headers)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_every_advertised_method_authenticates_and_nothing_else(client, meta, endpoint):
    advertised = meta[f"{endpoint}_endpoint_auth_methods_supported"]
    known = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
    assert set(advertised) <= set(known)
    for i, method in enumerate(known):
        form, headers = await credentials_for(client, method, endpoint, f"c{i}")
        status, body, _ = await call(client, endpoint, form, headers)
        authenticated = status != 401
        assert authenticated == (method in advertised), (method, status, body)
        if authenticated:  # a junk token: refused as a token, not as a client
            assert status == 200 or body["error"] in ("invalid_grant", "unauthorized_client"), (method, body)


async def test_every_advertised_assertion_algorithm_is_accepted_and_no_other(client, meta):
    p = provider_of(client)
    token_url = meta["token_endpoint"]
    for alg in meta["token_endpoint_auth_signing_alg_values_supported"]:
        key = await register_signed(client, f"ok-{alg}", alg)
        status, body, _ = await post(client, "/oauth2/token", assertion_form(
            sign(key, claims_for(f"ok-{alg}", token_url, p.now()), alg), grant_type="client_credentials"))
        assert status == 200, (alg, body)
    for alg in NOT_ADVERTISED_ALGS:
        assert alg not in meta["token_endpoint_auth_signing_alg_values_supported"]
        key = await register_signed(client, f"no-{alg}", alg)
        signer = OctKey.import_key(b"k" * 64) if alg.startswith("HS") else key  # a right signature
        status, body, _ = await post(client, "/oauth2/token", assertion_form(
            sign(signer, claims_for(f"no-{alg}", token_url, p.now()), alg, kid=key.kid),
            grant_type="client_credentials"))
        assert (status, body["error"]) == (401, "invalid_client"), alg


async def test_client_secret_jwt_is_not_advertised_and_is_refused(client, meta):
    """HS256 keyed with the client's own secret: client_secret_jwt, which tokensrv does not offer."""
    assert "client_secret_jwt" not in meta["token_endpoint_auth_methods_supported"]
    registered = await add_client(client, "svc")
    key = OctKey.import_key((registered.secret or "").encode())
    claims = claims_for("svc", meta["token_endpoint"], provider_of(client).now())
    status, body, _ = await post(client, "/oauth2/token", assertion_form(
        sign(key, claims, "HS256"), grant_type="client_credentials"))
    assert (status, body["error"]) == (401, "invalid_client")
    assert (await post(client, "/oauth2/token", {"grant_type": "client_credentials"},
                       basic("svc", registered.secret or "")))[0] == 200


async def test_par_is_advertised(client, meta, settings):
    assert meta["pushed_authorization_request_endpoint"] == settings.issuer + "/oauth2/par"
    assert meta["require_pushed_authorization_requests"] is False
