"""TOKENSRV_KEY_ALGORITHM: RS256 (the default), ES256 and EdDSA keys issue tokens end to end that
a third party (PyJWT) verifies against the published JWKS, and discovery lists the algorithm."""
from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.helpers.oauth import (
    add_app,
    add_client,
    add_user,
    header_of,
    introspect,
    login,
    refresh,
    revoke,
    token,
)

ALGORITHMS = ["RS256", "ES256", "EdDSA"]


async def verify_with_pyjwt(client, access_token: str, alg: str, audience: str, typ: str) -> dict[str, Any]:
    """What a third party does: find the key by `kid` in the JWKS, verify with PyJWT."""
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    header = header_of(access_token)
    assert header["alg"] == alg and header["typ"] == typ
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims: dict[str, Any] = jwt.decode(access_token, key.key, algorithms=[alg], audience=audience,
                                        options={"require": ["iss", "exp", "iat", "sub"]})
    return claims


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_client_credentials_tokens_verify_against_the_jwks(make_client, settings, alg):
    client = await make_client(settings, key_algorithm=alg)
    svc = await add_client(client, "svc", scopes=["read"])
    status, body, _ = await token(client, svc, grant_type="client_credentials")
    assert status == 200, body
    claims = await verify_with_pyjwt(client, body["access_token"], alg, "svc", "at+jwt")
    assert claims["iss"] == settings.issuer and claims["sub"] == "svc" and claims["scope"] == "read"


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_user_tokens_refresh_and_id_token_with_each_algorithm(make_client, settings, alg):
    client = await make_client(settings, key_algorithm=alg)
    app = await add_app(client, "app", scopes=["openid", "read"])
    user = await add_user(client)
    body = await login(client, app, scope="openid read")
    access = await verify_with_pyjwt(client, body["access_token"], alg, "app", "at+jwt")
    assert access["sub"] == user["sub"]
    id_claims = await verify_with_pyjwt(client, body["id_token"], alg, "app", "JWT")
    assert id_claims["sub"] == user["sub"] and "at_hash" in id_claims
    status, refreshed, _ = await refresh(client, app, body["refresh_token"])
    assert status == 200, refreshed
    assert (await verify_with_pyjwt(client, refreshed["access_token"], alg, "app", "at+jwt"))["sub"] == user["sub"]


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_discovery_and_jwks_list_the_algorithm(make_client, settings, alg):
    client = await make_client(settings, key_algorithm=alg)
    metadata = await (await client.get("/.well-known/openid-configuration")).json()
    assert alg in metadata["id_token_signing_alg_values_supported"]
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    assert {k["alg"] for k in jwks["keys"]} == {alg}
    assert all("d" not in k for k in jwks["keys"])  # public halves only


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_introspection_and_revocation_read_tokens_of_each_algorithm(make_client, settings, alg):
    """The server reads its own tokens back (RFC 7662, RFC 7009) whatever key signed them."""
    client = await make_client(settings, key_algorithm=alg)
    svc = await add_client(client, "svc", scopes=["read"])
    _, body, _ = await token(client, svc, grant_type="client_credentials")
    assert (await introspect(client, svc, body["access_token"]))["active"] is True
    assert await revoke(client, svc, body["access_token"]) == 200
    assert (await introspect(client, svc, body["access_token"]))["active"] is False
