"""Claims services read (issue 25 item 3): groups and OIDC standard claims by scope in UserInfo and
access tokens, custom scopes and per-client extra claims from the claims file, verified the way a
third party does (PyJWT against the published JWKS); discovery lists what is configured."""
from __future__ import annotations

import json
from typing import Any

import jwt
import pytest

from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD, basic, header_of
from tests.helpers.sso import add_app, redeem, sign_in
from tokensrv.admin import operations as admin
from tokensrv.claims import load_rules

RULES = {
    "scopes": {"department": {"department": {"attribute": "department"}}},
    "clients": {"billing": {"tenant": {"attribute": "tenant"}, "tier": {"value": "gold"}}},
}
ADDRESS = {"street_address": "1 Main St", "locality": "Springfield", "country": "US"}
ATTRIBUTES = {
    "given_name": "Alice", "family_name": "Liddell", "locale": "en-GB", "updated_at": "1700000000",
    "email_verified": "true", "phone_number": "+1 555 0100", "phone_number_verified": "false",
    "address": json.dumps(ADDRESS), "department": "research", "tenant": "acme",
}
SCOPES = ("openid", "profile", "email", "phone", "address", "groups", "department")


@pytest.fixture
async def client(make_client, settings, tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(RULES))
    return await make_client(settings, claims=load_rules(path))


async def add_alice(client) -> dict[str, Any]:
    return await admin.add_user(provider_of(client), "alice", PASSWORD, "alice@example.org", ("reader",),
                                ("eng", "ops"), ATTRIBUTES)


async def verified(client, token: str, audience: str) -> dict[str, Any]:
    """What a third party does: the key by `kid` from the JWKS, PyJWT's checks."""
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[header_of(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience,
                                        options={"require": ["iss", "exp", "iat", "sub"]})
    return claims


async def code_tokens(client, app, scope: str) -> dict[str, Any]:
    flow, answer = await sign_in(client, app, scope=scope)
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200, body
    return body


async def userinfo(client, access_token: str) -> dict[str, Any]:
    resp = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert resp.status == 200
    info: dict[str, Any] = await resp.json()
    return info


@pytest.mark.parametrize(("scope", "released"), [
    ("openid", set()),
    ("openid profile", {"preferred_username", "name", "given_name", "family_name", "locale", "updated_at"}),
    ("openid email", {"email", "email_verified"}),
    ("openid phone", {"phone_number", "phone_number_verified"}),
    ("openid address", {"address"}),
    ("openid groups", {"groups"}),
    ("openid department", {"department"}),
])
async def test_userinfo_releases_the_claims_of_each_scope_with_their_types(client, scope, released):
    user = await add_alice(client)
    app = await add_app(client, scopes=SCOPES)
    body = await code_tokens(client, app, scope)
    info = await userinfo(client, body["access_token"])
    assert set(info) == {"sub", *released} and info["sub"] == user["sub"]
    expected = {"given_name": "Alice", "family_name": "Liddell", "locale": "en-GB", "updated_at": 1700000000,
                "email_verified": True, "phone_number_verified": False, "address": ADDRESS,
                "groups": ["eng", "ops"], "department": "research", "name": "alice"}
    for claim in released & set(expected):
        assert info[claim] == expected[claim], claim
    # the ID token says who signed in, not what the scopes release (OIDC Core §5.4: UserInfo does)
    id_token = await verified(client, body["id_token"], app.client_id)
    assert not released & set(id_token)


async def test_the_claims_parameter_puts_claims_the_scopes_release_into_the_id_token(client):
    """OIDC Core §5.5: `claims={"id_token": {...}}` asks for claims in the ID token; a claim is added
    when a granted scope releases it (email here), never one no scope released (phone_number), and
    a protocol claim named there stays the ID token's own (sub)."""
    user = await add_alice(client)
    app = await add_app(client, scopes=SCOPES)
    asked = {"id_token": {"email": {"essential": True}, "groups": None, "department": None, "phone_number": None,
                          "sub": {"value": "someone-else"}}}
    flow, answer = await sign_in(client, app, scope="openid email groups department", claims=json.dumps(asked))
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200, body
    id_token = await verified(client, body["id_token"], app.client_id)
    assert id_token["email"] == "alice@example.org" and id_token["groups"] == ["eng", "ops"]
    assert id_token["department"] == "research" and id_token["sub"] == user["sub"]
    assert "phone_number" not in id_token and "email_verified" not in id_token


async def test_access_token_carries_groups_and_custom_scope_claims_only_when_granted(client):
    await add_alice(client)
    app = await add_app(client, scopes=SCOPES)
    with_scopes = await verified(client, (await code_tokens(client, app, "openid groups department"))["access_token"],
                                 app.client_id)
    assert with_scopes["groups"] == ["eng", "ops"] and with_scopes["department"] == "research"
    assert with_scopes["roles"] == ["reader"] and "given_name" not in with_scopes and "tenant" not in with_scopes
    without = await verified(client, (await code_tokens(client, app, "openid profile"))["access_token"],
                             app.client_id)
    assert "groups" not in without and "department" not in without


async def test_per_client_claims_static_and_from_the_user(client):
    await add_alice(client)
    billing = await add_app(client, "billing", public=False, scopes=("openid", "read"),
                            grant_types=("authorization_code", "client_credentials"))
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "read"},
                             headers=basic("billing", billing.secret or ""))
    assert resp.status == 200
    own = await verified(client, (await resp.json())["access_token"], "billing")
    assert own["tier"] == "gold" and "tenant" not in own and own["sub"] == "billing"  # no user: static only
    users = await verified(client, (await code_tokens(client, billing, "openid read"))["access_token"], "billing")
    assert users["tier"] == "gold" and users["tenant"] == "acme"
    other = await add_app(client, "other", scopes=("openid", "read"))
    plain = await verified(client, (await code_tokens(client, other, "openid read"))["access_token"], "other")
    assert "tier" not in plain and "tenant" not in plain


async def test_an_update_shows_in_the_next_refreshed_token(client):
    await add_alice(client)
    app = await add_app(client, scopes=SCOPES)
    body = await code_tokens(client, app, "openid groups department")
    change = admin.UserChange(add_groups=("admins",), remove_groups=("ops",), attributes=(("department", "sales"),))
    updated = await admin.update_user(provider_of(client), "alice", change)
    assert updated["groups"] == ["eng", "admins"] and updated["attributes"]["department"] == "sales"
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                    "refresh_token": body["refresh_token"]})
    assert resp.status == 200
    claims = await verified(client, (await resp.json())["access_token"], app.client_id)
    assert claims["groups"] == ["eng", "admins"] and claims["department"] == "sales"


async def test_discovery_advertises_the_configured_scopes_and_claims(client):
    doc = await (await client.get("/.well-known/openid-configuration")).json()
    assert {"openid", "profile", "email", "phone", "address", "groups", "department"} == set(doc["scopes_supported"])
    assert {"roles", "groups", "given_name", "phone_number", "address", "department", "tenant", "tier",
            "sub", "email_verified"} <= set(doc["claims_supported"])
