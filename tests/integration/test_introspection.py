"""RFC 7662 introspection: confidential clients only; active only while signed by us, unexpired
and not revoked by any route (jti, session, subject not-before, disabled or removed user)."""
from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.helpers.app import provider_of
from tests.helpers.oauth import (
    add_app,
    add_client,
    add_user,
    claims_of,
    introspect,
    login,
    post,
    refresh,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.endpoints.revocation import revoke_session
from tokensrv.store import keyspace


async def setup(client):
    app = await add_app(client, scopes=("openid", "read", "write"))
    user = await add_user(client)
    rs = await add_client(client, "rs")
    return app, rs, user


async def test_active_access_token_describes_itself(client, settings):
    app, rs, user = await setup(client)
    issued = await login(client, app, scope="read")
    claims = claims_of(issued["access_token"])
    status, body, headers = await post(client, "/oauth2/introspect", {"token": issued["access_token"]}, rs.basic)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert body == {
        "active": True, "token_type": "Bearer", "scope": "read", "client_id": "app", "sub": user["sub"],
        "aud": "app", "iss": settings.issuer, "exp": claims["exp"], "iat": claims["iat"],
        "jti": claims["jti"], "auth_time": claims["auth_time"], "sid": claims["sid"],
    }


async def test_client_credentials_token_is_active(client):
    _, rs, _ = await setup(client)
    svc = await add_client(client, "svc", scopes=("read",))
    _status, body, _ = await post(client, "/oauth2/token", {"grant_type": "client_credentials"}, svc.basic)
    answer = await introspect(client, rs, body["access_token"])
    assert answer["active"] is True and answer["sub"] == "svc" and "auth_time" not in answer


async def test_expired_access_token_is_inactive(client, clock, settings):
    app, rs, _ = await setup(client)
    issued = await login(client, app)
    clock.advance(settings.access_token_ttl - 1)
    assert (await introspect(client, rs, issued["access_token"]))["active"] is True
    clock.advance(1)
    assert await introspect(client, rs, issued["access_token"]) == {"active": False}


async def test_disabled_and_removed_users_tokens_are_inactive(client, clock):
    app, rs, _ = await setup(client)
    await add_user(client, "bob")
    alice, bob = await login(client, app), await login(client, app, "bob")
    p = provider_of(client)
    # flip the records directly: introspection must not rely on the deny-list alone
    alice_user = await p.store.users.find_user("alice")
    await p.store.users.save_user(alice_user.__class__(**{**alice_user.to_json(), "disabled": True}))
    await p.store.users.remove_user(await p.store.users.find_user("bob"))
    for issued in (alice, bob):
        assert (await introspect(client, rs, issued["access_token"]))["active"] is False
        assert (await introspect(client, app, issued["refresh_token"]))["active"] is False


async def test_a_logged_out_session_takes_its_tokens_along(client, redis):
    app, rs, _ = await setup(client)
    issued = await login(client, app)
    sid = claims_of(issued["access_token"])["sid"]
    await revoke_session(provider_of(client), sid)
    assert (await introspect(client, rs, issued["access_token"]))["active"] is False
    assert (await refresh(client, app, issued["refresh_token"]))[0] == 400
    assert await redis.ttl(keyspace.deny("sid", sid)) > 0


async def test_refresh_token_is_described_only_to_its_own_client(client, clock, settings):
    app, rs, user = await setup(client)
    issued = await login(client, app, scope="read")
    answer = await introspect(client, app, issued["refresh_token"], token_type_hint="refresh_token")
    assert answer == {
        "active": True, "token_type": "refresh_token", "scope": "read", "client_id": "app",
        "sub": user["sub"], "exp": int(clock()) + settings.refresh_token_ttl, "iat": int(clock()),
        "iss": settings.issuer,
    }
    assert await introspect(client, rs, issued["refresh_token"]) == {"active": False}


async def test_a_rotated_refresh_token_is_inactive(client):
    app, _, _ = await setup(client)
    first = await login(client, app)
    second = (await refresh(client, app, first["refresh_token"]))[1]
    assert (await introspect(client, app, first["refresh_token"]))["active"] is False
    assert (await introspect(client, app, second["refresh_token"]))["active"] is True
    # introspecting an old token is a question, not a use: the family lives on
    assert (await refresh(client, app, second["refresh_token"]))[0] == 200


def forge(claims: dict, header: dict, key) -> str:
    return jwt.encode(header, claims, key)


async def test_tokens_we_did_not_sign_or_of_the_wrong_type_are_inactive(client, settings):
    app, rs, _ = await setup(client)
    issued = await login(client, app, scope="openid")
    claims = claims_of(issued["access_token"])
    stranger = RSAKey.generate_key(2048)
    kid = provider_of(client).keys.ring.signing.kid
    forged = forge(claims, {"alg": "RS256", "kid": kid, "typ": "at+jwt"}, stranger)
    signing = provider_of(client).keys.ring.signing.key
    other_issuer = forge({**claims, "iss": "https://evil.example"}, {"alg": "RS256", "kid": kid, "typ": "at+jwt"},
                         signing)
    untyped = forge(claims, {"alg": "RS256", "kid": kid}, signing)
    head, body, sig = issued["access_token"].split(".")
    alg_none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "at+jwt"}).encode()).decode().rstrip("=")
    for value in (forged, other_issuer, untyped, issued["id_token"], f"{alg_none}.{body}.",
                  f"{head}.{body}.{sig[:-4]}AAAA", "garbage", "a.b.c"):
        assert await introspect(client, rs, value) == {"active": False}, value[:40]


@pytest.mark.parametrize("caller", ["public", "none", "wrong"])
async def test_only_confidential_clients_may_introspect(client, caller):
    app, _, _ = await setup(client)
    issued = await login(client, app)
    await add_client(client, "spa", public=True, grant_types=("authorization_code",),
                     redirect_uris=("http://127.0.0.1:3000/cb",))
    form, headers = {"token": issued["access_token"]}, {}
    if caller == "public":
        form["client_id"] = "spa"
    elif caller == "wrong":
        headers = {"Authorization": "Basic " + base64.b64encode(b"app:wrong").decode()}
    status, body, resp_headers = await post(client, "/oauth2/introspect", form, headers)
    assert (status, body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in resp_headers


async def test_introspection_needs_a_token(client):
    _, rs, _ = await setup(client)
    status, body, _ = await post(client, "/oauth2/introspect", {}, rs.basic)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_sign_out_everywhere_is_visible_at_once(client):
    app, rs, _ = await setup(client)
    issued = await login(client, app)
    await admin.revoke_everywhere(provider_of(client), "alice")
    assert await introspect(client, rs, issued["access_token"]) == {"active": False}
