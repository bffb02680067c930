"""POST /oauth2/token: client authentication, the client_credentials and password grants, the
RFC 9068 access token, and every RFC 6749 §5.2 error with its status."""
from __future__ import annotations

import base64

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers.app import provider_of
from tests.helpers.oauth import (
    PASSWORD,
    add_app,
    add_client,
    add_user,
    basic,
    claims_of,
    header_of,
    login,
    post,
    token,
)
from tokensrv.admin import operations as admin
from tokensrv.store import Client


async def verified_claims(client, access_token: str) -> dict:
    """Signature checked against the served JWKS, as a resource server would."""
    keyset = KeySet.import_key_set(await (await client.get("/.well-known/jwks.json")).json())
    return dict(jwt.decode(access_token, keyset, algorithms=["RS256"]).claims)


# ---- client_credentials and the access token ----

async def test_client_credentials_with_basic_auth_issues_an_rfc9068_token(client, settings, clock):
    svc = await add_client(client, "svc", scopes=("read", "write"), audience="orders")
    status, body, headers = await token(client, svc, grant_type="client_credentials", scope="read")
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    assert body["token_type"] == "Bearer" and body["expires_in"] == settings.access_token_ttl
    assert body["scope"] == "read" and "refresh_token" not in body and "id_token" not in body
    header = header_of(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert header["kid"] == provider_of(client).keys.ring.signing.kid
    claims = await verified_claims(client, body["access_token"])
    now = int(clock())
    assert claims["iss"] == settings.issuer and claims["aud"] == "orders"
    assert claims["sub"] == "svc" and claims["client_id"] == "svc" and claims["scope"] == "read"
    assert claims["iat"] == now and claims["exp"] == now + settings.access_token_ttl
    assert len(claims["jti"]) >= 16
    assert not {"auth_time", "sid", "roles"} & set(claims)


async def test_client_secret_post_is_accepted(client):
    svc = await add_client(client, "svc", scopes=("read",))
    status, body, _ = await post(client, "/oauth2/token", {
        "grant_type": "client_credentials", "client_id": "svc", "client_secret": svc.secret})
    assert status == 200, body
    assert claims_of(body["access_token"])["aud"] == "svc"  # no audience registered: the client itself


async def test_no_scope_asked_grants_everything_allowed_and_each_token_has_its_own_jti(client):
    svc = await add_client(client, "svc", scopes=("read", "write"))
    first = (await token(client, svc, grant_type="client_credentials"))[1]
    second = (await token(client, svc, grant_type="client_credentials"))[1]
    assert first["scope"] == "read write"
    assert claims_of(first["access_token"])["jti"] != claims_of(second["access_token"])["jti"]


@pytest.mark.parametrize("scope", ["admin", "read admin", "read  write", 'read "x"', "read\\x"])
async def test_scope_beyond_allowed_or_malformed_is_invalid_scope(client, scope):
    svc = await add_client(client, "svc", scopes=("read", "write"))
    status, body, _ = await token(client, svc, grant_type="client_credentials", scope=scope)
    assert (status, body["error"]) == (400, "invalid_scope")


async def test_repeated_scope_tokens_are_granted_once(client):
    svc = await add_client(client, "svc", scopes=("read", "write"))
    status, body, _ = await token(client, svc, grant_type="client_credentials", scope="write read write")
    assert status == 200 and body["scope"] == "write read"


# ---- client authentication failures: 401 invalid_client with WWW-Authenticate ----

async def assert_invalid_client(resp_tuple):
    status, body, headers = resp_tuple
    assert status == 401, body
    assert body["error"] == "invalid_client"
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert headers["Cache-Control"] == "no-store"
    return body


async def test_wrong_secret_and_unknown_client_answer_alike(client):
    svc = await add_client(client, "svc")
    wrong = await assert_invalid_client(await post(
        client, "/oauth2/token", {"grant_type": "client_credentials"}, basic("svc", svc.secret + "x")))
    unknown = await assert_invalid_client(await post(
        client, "/oauth2/token", {"grant_type": "client_credentials"}, basic("nobody", svc.secret)))
    assert wrong == unknown


@pytest.mark.parametrize("authorization", [
    "Bearer abc", "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Basic " + base64.b64encode(b"svc:").decode(),
])
async def test_malformed_or_foreign_authorization_is_invalid_client(client, authorization):
    await add_client(client, "svc")
    await assert_invalid_client(await post(
        client, "/oauth2/token", {"grant_type": "client_credentials"}, {"Authorization": authorization}))


async def test_no_client_credentials_at_all_is_invalid_client(client):
    await assert_invalid_client(await post(client, "/oauth2/token", {"grant_type": "client_credentials"}))


async def test_confidential_client_without_its_secret_is_invalid_client(client):
    await add_client(client, "svc")
    await assert_invalid_client(await post(
        client, "/oauth2/token", {"grant_type": "client_credentials", "client_id": "svc"}))


async def test_public_client_presenting_a_secret_is_invalid_client(client):
    await add_client(client, "spa", public=True, grant_types=("authorization_code", "refresh_token"),
                     redirect_uris=("http://127.0.0.1:3000/cb",))
    await assert_invalid_client(await post(
        client, "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": "x"}, basic("spa", "guess")))


async def test_basic_for_one_client_and_client_id_of_another_is_invalid_client(client):
    svc = await add_client(client, "svc")
    await add_client(client, "other")
    await assert_invalid_client(await post(
        client, "/oauth2/token", {"grant_type": "client_credentials", "client_id": "other"}, svc.basic))


async def test_two_authentication_methods_is_invalid_request(client):
    svc = await add_client(client, "svc")
    status, body, _ = await post(client, "/oauth2/token",
                                 {"grant_type": "client_credentials", "client_secret": svc.secret}, svc.basic)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_basic_credentials_are_form_decoded(client):
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding."""
    svc = await add_client(client, "svc.v2~x")
    status, body, _ = await post(client, "/oauth2/token", {"grant_type": "client_credentials"},
                                 basic("svc.v2%7Ex", svc.secret))
    assert status == 200, body


# ---- grant selection ----

async def test_public_client_may_not_use_client_credentials(client):
    await add_client(client, "spa", public=True, grant_types=("authorization_code", "refresh_token"),
                     redirect_uris=("http://127.0.0.1:3000/cb",))
    status, body, _ = await post(client, "/oauth2/token", {"grant_type": "client_credentials", "client_id": "spa"})
    assert (status, body["error"]) == (400, "unauthorized_client")


async def test_grant_not_registered_for_the_client_is_unauthorized_client(client):
    svc = await add_client(client, "svc", grant_types=("client_credentials",))
    for params in ({"grant_type": "password", "username": "a", "password": "b"},
                   {"grant_type": "refresh_token", "refresh_token": "x"}):
        status, body, _ = await post(client, "/oauth2/token", params, svc.basic)
        assert (status, body["error"]) == (400, "unauthorized_client"), params
    web = await add_client(client, "web", grant_types=("authorization_code",),
                           redirect_uris=("https://app.example/cb",))
    status, body, _ = await token(client, web, grant_type="client_credentials")
    assert (status, body["error"]) == (400, "unauthorized_client")


async def test_unknown_grant_type_is_unsupported_grant_type(client):
    svc = await add_client(client, "svc")
    for grant_type in ("implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer"):
        status, body, _ = await token(client, svc, grant_type=grant_type)
        assert (status, body["error"]) == (400, "unsupported_grant_type")
    for grant_type in ("urn:ietf:params:oauth:grant-type:device_code",  # supported, not registered for svc
                       "urn:ietf:params:oauth:grant-type:token-exchange"):
        status, body, _ = await token(client, svc, grant_type=grant_type)
        assert (status, body["error"]) == (400, "unauthorized_client")


async def test_missing_grant_type_is_invalid_request(client):
    svc = await add_client(client, "svc")
    for params in ({}, {"grant_type": ""}):
        status, body, _ = await post(client, "/oauth2/token", params, svc.basic)
        assert (status, body["error"]) == (400, "invalid_request")


# ---- the password grant ----

async def test_password_grant_issues_user_tokens_with_login_claims(client, settings, clock):
    app = await add_app(client)
    user = await add_user(client, "alice", roles=("reader", "admin"))
    body = await login(client, app, scope="read")
    assert body["scope"] == "read" and body["token_type"] == "Bearer"
    assert len(body["refresh_token"]) == 64
    claims = await verified_claims(client, body["access_token"])
    assert claims["sub"] == user["sub"] != "alice"
    assert claims["client_id"] == "app" and claims["aud"] == "app"
    assert claims["auth_time"] == int(clock()) and claims["roles"] == ["reader", "admin"]
    assert claims["sid"] and claims["iss"] == settings.issuer and "email" not in claims


async def test_username_is_case_insensitive(client):
    app = await add_app(client)
    await add_user(client, "Alice")
    assert claims_of((await login(client, app, "aLICE"))["access_token"])["sub"]


async def test_password_grant_without_refresh_grant_gets_no_refresh_token(client):
    app = await add_app(client, grant_types=("password",))
    await add_user(client)
    assert "refresh_token" not in await login(client, app)


async def test_openid_scope_adds_an_id_token(client):
    app = await add_app(client, scopes=("openid", "read"))
    await add_user(client)
    body = await login(client, app, scope="openid")
    assert header_of(body["id_token"])["typ"] == "JWT"
    assert claims_of(body["id_token"])["aud"] == "app"


async def test_bad_credentials_answer_alike_whatever_was_wrong(client):
    app = await add_app(client)
    await add_user(client, "alice")
    await add_user(client, "bob")
    await admin.set_disabled(provider_of(client), "bob", True)
    answers = []
    for username, password in (("alice", "wrong password"), ("nobody", PASSWORD), ("bob", PASSWORD)):
        status, body, _ = await token(client, app, grant_type="password", username=username, password=password)
        answers.append((status, body))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 400 and answers[0][1]["error"] == "invalid_grant"
    assert answers[0][1]["error_description"] == "invalid username or password"


async def test_password_grant_only_for_first_party_clients(client):
    """A record that allows the password grant without being first-party (registration refuses
    it; an edited store might not) is still refused at the token endpoint."""
    store = provider_of(client).store
    await store.clients.add_client(Client("third", None, grant_types=("password",)))
    await add_user(client)
    status, body, _ = await post(client, "/oauth2/token", {
        "grant_type": "password", "username": "alice", "password": PASSWORD, "client_id": "third"})
    assert (status, body["error"]) == (400, "unauthorized_client")
    first = await add_client(client, "first", grant_types=("client_credentials",), first_party=True)
    status, body, _ = await token(client, first, grant_type="password", username="alice", password=PASSWORD)
    assert (status, body["error"]) == (400, "unauthorized_client")


@pytest.mark.parametrize("missing", ["username", "password"])
async def test_password_grant_missing_parameter_is_invalid_request(client, missing):
    app = await add_app(client)
    params = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    del params[missing]
    status, body, _ = await post(client, "/oauth2/token", params, app.basic)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_password_grant_scope_is_checked_before_the_password(client):
    app = await add_app(client, scopes=("read",))
    await add_user(client)
    status, body, _ = await token(client, app, grant_type="password", username="alice",
                                  password=PASSWORD, scope="write")
    assert (status, body["error"]) == (400, "invalid_scope")


# ---- the request itself ----

async def test_repeated_parameter_is_invalid_request(client):
    svc = await add_client(client, "svc", scopes=("read", "write"))
    resp = await client.post("/oauth2/token", data="grant_type=client_credentials&scope=read&scope=write",
                             headers={**svc.basic, "Content-Type": "application/x-www-form-urlencoded"})
    body = await resp.json()
    assert (resp.status, body["error"]) == (400, "invalid_request")
    assert "scope" in body["error_description"]


async def test_repeated_authorization_header_is_invalid_request(client):
    svc = await add_client(client, "svc")
    headers = [("Authorization", svc.basic["Authorization"]), ("Authorization", svc.basic["Authorization"]),
               ("Content-Type", "application/x-www-form-urlencoded")]
    resp = await client.post("/oauth2/token", data="grant_type=client_credentials", headers=headers)
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("content_type,data", [
    ("application/json", b'{"grant_type": "client_credentials"}'),
    ("text/plain", b"grant_type=client_credentials"),
    ("multipart/form-data; boundary=x", (b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n"
                                         b"client_credentials\r\n--x--\r\n")),
])
async def test_wrong_content_type_is_invalid_request(client, content_type, data):
    svc = await add_client(client, "svc")
    resp = await client.post("/oauth2/token", data=data, headers={**svc.basic, "Content-Type": content_type})
    body = await resp.json()
    assert (resp.status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("content_type,data", [
    ("application/x-www-form-urlencoded", b"grant_type=client_credentials&scope=\xff\xfe"),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"grant_type=client_credentials"),
])
async def test_undecodable_body_is_invalid_request(client, content_type, data):
    svc = await add_client(client, "svc")
    resp = await client.post("/oauth2/token", data=data, headers={**svc.basic, "Content-Type": content_type})
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_request")


async def test_percent_garbage_is_just_an_unknown_value(client):
    svc = await add_client(client, "svc")
    resp = await client.post("/oauth2/token", data=b"grant_type=%ZZ%%&x=%",
                             headers={**svc.basic, "Content-Type": "application/x-www-form-urlencoded"})
    assert (resp.status, (await resp.json())["error"]) == (400, "unsupported_grant_type")


async def test_overlong_parameter_is_invalid_request(client):
    svc = await add_client(client, "svc")
    status, body, _ = await token(client, svc, grant_type="client_credentials", scope="r" * 4097)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_body_over_64_kib_is_413_json(client):
    svc = await add_client(client, "svc")
    resp = await client.post("/oauth2/token", data=b"grant_type=client_credentials&pad=" + b"a" * (64 * 1024),
                             headers={**svc.basic, "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 413
    body = await resp.json()
    assert body["error"] == "invalid_request" and resp.headers["Cache-Control"] == "no-store"


async def test_body_just_under_the_limit_is_parsed(client):
    svc = await add_client(client, "svc")
    head = b"grant_type=client_credentials&pad="
    resp = await client.post("/oauth2/token", data=head + b"a" * (64 * 1024 - len(head) - 1),
                             headers={**svc.basic, "Content-Type": "application/x-www-form-urlencoded"})
    # the padding parameter exceeds the per-value limit, but the body was read and parsed
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_request")


async def test_get_on_the_token_endpoint_is_405_json(client):
    resp = await client.get("/oauth2/token")
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"
