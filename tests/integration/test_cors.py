"""CORS for browser applications on other origins (tokensrv/server/cors.py): preflights answered
for an origin some client registered, the real answers of the token, revocation and UserInfo
endpoints readable only by the origins of the client concerned (errors included), discovery and
the JWKS readable by any page, interactive pages never; a request without Origin unchanged. And a
browser public client's refresh families: a short idle lifetime unless bound to a DPoP key."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.dpop import DPoPKey
from tests.helpers.sso import App, sign_in, tokens_for
from tests.helpers.sso import add_user as add_sso_user
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.own_tokens import parse_refresh_token
from tokensrv.store import keyspace

ORIGIN = "http://localhost:9000"
OTHER = "http://localhost:9100"  # registered, but for another client
REDIRECT = ORIGIN + "/"
ENDPOINTS = {"/oauth2/token": "POST", "/oauth2/revoke": "POST", "/oauth2/userinfo": "GET"}


async def browser_app(client, client_id="spa", origins=(ORIGIN,), public=True) -> App:
    created = await admin.add_client(provider_of(client), client_id, ClientMetadata(
        public=public, redirect_uris=(f"{origins[0] if origins else ORIGIN}/",), scope=("openid", "profile", "email"),
        grant_types=("authorization_code", "refresh_token"), allowed_origins=origins))
    return App(client_id, created["client_secret"], f"{origins[0] if origins else ORIGIN}/")


async def two_apps(client) -> App:
    await browser_app(client, "other", (OTHER,))
    await add_sso_user(client)
    return await browser_app(client)


def preflight(client, path, origin=ORIGIN, method="POST", **headers):
    sent = {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,dpop", **headers}
    return client.options(path, headers={k: v for k, v in sent.items() if v is not None})


def cors_headers(resp) -> dict[str, str]:
    return {k: v for k, v in resp.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_a_preflight_from_a_registered_origin_is_answered(client, path):
    await two_apps(client)
    for origin in (ORIGIN, OTHER):  # a preflight names no client: any client's origin will do
        resp = await preflight(client, path, origin, ENDPOINTS[path])
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == origin
        assert ENDPOINTS[path] in resp.headers["Access-Control-Allow-Methods"]
        assert {"Authorization", "Content-Type", "DPoP"} <= {
            h.strip() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
        assert int(resp.headers["Access-Control-Max-Age"]) > 0
        assert resp.headers["Vary"] == "Origin"
        assert "Access-Control-Allow-Credentials" not in resp.headers


@pytest.mark.parametrize("origin, method", [
    ("https://evil.example", "POST"),  # registered by nobody
    ("null", "POST"),
    ("http://localhost:9000/", "POST"),  # not how a browser names an origin
    (ORIGIN, "PUT"),  # a method the endpoint does not answer
    (ORIGIN, None),  # not a preflight: a plain OPTIONS
])
async def test_a_preflight_is_refused_without_any_cors_header(client, origin, method):
    await two_apps(client)
    resp = await preflight(client, "/oauth2/token", origin, method)
    assert resp.status == 204 and resp.headers["Allow"] == "POST, OPTIONS"
    assert cors_headers(resp) == {}


async def test_preflights_follow_client_changes(client):
    await add_sso_user(client)
    assert "Access-Control-Allow-Origin" not in (await preflight(client, "/oauth2/token")).headers
    await browser_app(client)  # the origin index follows the client cache: at once in this process
    assert (await preflight(client, "/oauth2/token")).headers["Access-Control-Allow-Origin"] == ORIGIN
    await admin.remove_client(provider_of(client), "spa")
    assert "Access-Control-Allow-Origin" not in (await preflight(client, "/oauth2/token")).headers


async def test_token_answers_carry_acao_only_for_the_clients_own_origin(client):
    app = await two_apps(client)
    flow, answer = await sign_in(client, app)
    resp = await client.post("/oauth2/token", headers={"Origin": OTHER}, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": app.redirect_uri,
        "code_verifier": flow.verifier, "client_id": app.client_id})
    assert resp.status == 200  # the server answers; the browser keeps it from the page
    assert "Access-Control-Allow-Origin" not in resp.headers and resp.headers["Vary"] == "Origin"
    refresh_token = (await resp.json())["refresh_token"]
    resp = await client.post("/oauth2/token", headers={"Origin": ORIGIN}, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert set(resp.headers["Access-Control-Expose-Headers"].split(", ")) == {"DPoP-Nonce", "WWW-Authenticate"}
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_error_answers_to_the_clients_origin_carry_acao_too(client):
    app = await two_apps(client)
    resp = await client.post("/oauth2/token", headers={"Origin": ORIGIN}, data={
        "grant_type": "refresh_token", "refresh_token": "x" * 64, "client_id": app.client_id})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    resp = await client.post("/oauth2/token", headers={"Origin": OTHER}, data={
        "grant_type": "refresh_token", "refresh_token": "x" * 64, "client_id": app.client_id})
    assert resp.status == 400 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.post("/oauth2/token", headers={"Origin": ORIGIN}, data={"grant_type": "refresh_token"})
    assert resp.status in (400, 401) and "Access-Control-Allow-Origin" not in resp.headers  # no client named


async def test_a_request_without_origin_is_unchanged(client):
    app = await two_apps(client)
    body = await tokens_for(client, app)
    resp = await client.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": app.client_id})
    assert resp.status == 200
    assert cors_headers(resp) == {} and "Vary" not in resp.headers


async def test_userinfo_and_revocation_follow_the_tokens_client(client):
    app = await two_apps(client)
    body = await tokens_for(client, app)
    bearer = {"Authorization": "Bearer " + body["access_token"]}
    resp = await client.get("/oauth2/userinfo", headers={**bearer, "Origin": ORIGIN})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    resp = await client.get("/oauth2/userinfo", headers={**bearer, "Origin": OTHER})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.post("/oauth2/revoke", headers={"Origin": OTHER}, data={
        "token": body["access_token"], "client_id": app.client_id})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.post("/oauth2/revoke", headers={"Origin": ORIGIN}, data={
        "token": body["access_token"], "client_id": app.client_id})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    # the revoked token's 401 is readable by the app, which then knows to sign in again
    resp = await client.get("/oauth2/userinfo", headers={**bearer, "Origin": ORIGIN})
    assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "WWW-Authenticate" in resp.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                  "/.well-known/jwks.json"])
@pytest.mark.parametrize("origin", [None, "https://anyone.example"])
async def test_discovery_and_jwks_are_readable_from_any_origin(client, path, origin):
    resp = await client.get(path, headers={} if origin is None else {"Origin": origin})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in resp.headers


@pytest.mark.parametrize("path", ["/oauth2/authorize", "/login", "/account", "/device", "/oauth2/logout",
                                  "/oauth2/introspect", "/oauth2/device_authorization"])
async def test_interactive_pages_and_back_channel_endpoints_never_answer_cors(client, path):
    await two_apps(client)
    resp = await client.get(path + "?client_id=spa", headers={"Origin": ORIGIN}, allow_redirects=False)
    assert cors_headers(resp) == {}
    resp = await preflight(client, path)
    assert cors_headers(resp) == {} and resp.status == 405


async def family_idle(client, refresh_token) -> int:
    redis = provider_of(client).store.redis
    family = keyspace.family(parse_refresh_token(refresh_token))
    return int(await redis.expiretime(family)) - provider_of(client).now()


async def test_a_browser_public_clients_refresh_family_has_the_short_idle_lifetime(make_client, settings):
    client = await make_client(settings, browser_refresh_idle=120)
    app = await two_apps(client)
    body = await tokens_for(client, app)
    assert await family_idle(client, body["refresh_token"]) == 120
    resp = await client.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": app.client_id})
    assert resp.status == 200
    assert await family_idle(client, (await resp.json())["refresh_token"]) == 120  # and at each rotation
    # a public client without origins (a native app) keeps REFRESH_TOKEN_TTL
    native = await browser_app(client, "native", origins=())
    body = await tokens_for(client, native)
    assert await family_idle(client, body["refresh_token"]) == settings.refresh_token_ttl


async def test_a_browser_clients_dpop_bound_family_keeps_the_usual_idle_lifetime(make_client, settings):
    client = await make_client(settings, browser_refresh_idle=120)
    app = await two_apps(client)
    key = DPoPKey()
    flow, answer = await sign_in(client, app)
    proof = key.proof("POST", "http://127.0.0.1:8080/oauth2/token", provider_of(client).clock())
    resp = await client.post("/oauth2/token", headers={"DPoP": proof}, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": app.redirect_uri,
        "code_verifier": flow.verifier, "client_id": app.client_id})
    body = await resp.json()
    assert resp.status == 200 and body["token_type"] == "DPoP", body
    assert await family_idle(client, body["refresh_token"]) == settings.refresh_token_ttl


async def test_a_proof_at_refresh_does_not_lift_the_short_idle_of_a_family_not_bound_at_sign_in(make_client, settings):
    client = await make_client(settings, browser_refresh_idle=120)
    app = await two_apps(client)
    body = await tokens_for(client, app)  # no proof: the family is not bound
    proof = DPoPKey().proof("POST", "http://127.0.0.1:8080/oauth2/token", provider_of(client).clock())
    resp = await client.post("/oauth2/token", headers={"DPoP": proof}, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": app.client_id})
    assert resp.status == 200, await resp.text()
    assert await family_idle(client, (await resp.json())["refresh_token"]) == 120
