"""Dynamic client registration (RFC 7591) and its management (RFC 7592) on every store topology:
off by default, initial access tokens (single use, expired, wrong), registration access tokens
bound to one client, metadata checked like `tokensrv client add` (hostile redirect URIs, auth
methods, grants, scopes), and a registered client then signing a user in and acting for itself."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json

import pytest

from tests.helpers.app import provider_of
from tests.helpers.assertion import new_key, public_jwks
from tests.helpers.device import page, signed_in, start
from tests.helpers.sso import (
    REDIRECT,
    App,
    add_user,
    begin,
    consent,
    doomed_store,
    login_page,
    query_of,
    redeem,
    submit,
)
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.store import keyspace

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

REGISTER = "/oauth2/register"
WEB = {"redirect_uris": ["https://rp.example.org/cb"], "client_name": "Example RP",
       "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile"}


@pytest.fixture
async def server(make_client, settings):
    return await make_client(settings, registration="on")


async def initial_token(server, uses=1, ttl=3600) -> str:
    return (await admin.mint_initial_token(provider_of(server), ttl, uses))["initial_access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(server, metadata, token=None, **kwargs):
    headers = bearer(token if token is not None else await initial_token(server))
    resp = await server.post(REGISTER, json=metadata, headers=headers, **kwargs)
    return resp.status, await resp.json(), resp.headers


async def manage(server, method, uri, token, **kwargs):
    resp = await server.request(method, uri, headers=bearer(token), **kwargs)
    body = await resp.json() if resp.status != 204 else None
    return resp.status, body, resp.headers


def path_of(body) -> str:
    return body["registration_client_uri"].removeprefix("http://127.0.0.1:8080")


async def client_credentials(server, client_id, secret, **params):
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    resp = await server.post("/oauth2/token", data={"grant_type": "client_credentials", **params},
                             headers={"Authorization": "Basic " + raw})
    return resp.status, await resp.json()


async def test_off_by_default_the_endpoints_are_unknown_routes_and_not_advertised(client):
    token = await initial_token(client)
    resp = await client.post(REGISTER, json=WEB, headers=bearer(token))
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    assert (await client.get(REGISTER + "/anything", headers=bearer(token))).status == 404
    meta = await (await client.get("/.well-known/openid-configuration")).json()
    assert "registration_endpoint" not in meta
    assert not await provider_of(client).store.clients.list_clients()


async def test_discovery_advertises_the_endpoint_when_on(server):
    meta = await (await server.get("/.well-known/oauth-authorization-server")).json()
    assert meta["registration_endpoint"] == "http://127.0.0.1:8080/oauth2/register"


async def test_register_read_update_delete(server):
    status, body, headers = await register(server, WEB)
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    client_id, secret, rat = body["client_id"], body["client_secret"], body["registration_access_token"]
    assert body["client_secret_expires_at"] == 0 and body["client_id_issued_at"] > 0
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["redirect_uris"] == WEB["redirect_uris"] and body["response_types"] == ["code"]
    assert body["client_name"] == "Example RP" and body["scope"] == "openid profile"
    assert body["registration_client_uri"] == f"http://127.0.0.1:8080/oauth2/register/{client_id}"

    stored = await provider_of(server).store.clients.get_client(client_id)
    assert stored.registered and not stored.first_party and stored.audience is None
    assert stored.registration_token_digest == secret_digest(rat)  # only the digest is kept
    assert secret not in json.dumps(stored.to_json()) and rat not in json.dumps(stored.to_json())

    status, read, _ = await manage(server, "GET", path_of(body), rat)
    assert status == 200 and read["client_id"] == client_id and read["client_name"] == "Example RP"
    assert "client_secret" not in read
    rat = read["registration_access_token"]  # RFC 7592 §3: the token to use next (rotated)

    update = {**WEB, "client_id": client_id, "client_name": "Renamed", "redirect_uris": ["https://rp.example.org/v2"]}
    status, updated, _ = await manage(server, "PUT", path_of(body), rat, json=update)
    assert status == 200, updated
    assert updated["client_name"] == "Renamed" and updated["redirect_uris"] == ["https://rp.example.org/v2"]
    assert updated["client_id_issued_at"] == body["client_id_issued_at"]
    assert "client_secret" not in updated  # the secret stays as it was
    new_rat = updated["registration_access_token"]
    assert new_rat != rat
    assert (await manage(server, "GET", path_of(body), rat))[0] == 401  # rotated: the old one is dead
    status, read, _ = await manage(server, "GET", path_of(body), new_rat)
    assert status == 200
    rat = read["registration_access_token"]

    status, _, _ = await manage(server, "DELETE", path_of(body), rat)
    assert status == 204
    assert await provider_of(server).store.clients.get_client(client_id) is None
    assert (await manage(server, "GET", path_of(body), rat))[0] == 401


async def test_a_registered_client_gets_tokens_for_itself_until_it_deletes_itself(server):
    status, body, _ = await register(server, {"grant_types": ["client_credentials"], "response_types": [],
                                              "scope": "openid email"})
    assert status == 201, body
    status, tokens = await client_credentials(server, body["client_id"], body["client_secret"])
    assert status == 200 and tokens["scope"] == "openid email"
    assert (await manage(server, "DELETE", path_of(body), body["registration_access_token"]))[0] == 204
    status, refused = await client_credentials(server, body["client_id"], body["client_secret"])
    assert status == 401 and refused["error"] == "invalid_client"


async def test_a_registered_public_client_signs_a_user_in_with_the_code_flow(server):
    await add_user(server)
    status, body, _ = await register(server, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                                              "grant_types": ["authorization_code", "refresh_token"],
                                              "scope": "openid profile email"})
    assert status == 201 and "client_secret" not in body
    app = App(body["client_id"], None, REDIRECT)
    flow, resp = await begin(server, app)
    request_id, csrf = await login_page(server, resp.headers["Location"])
    resp = await submit(server, request_id, csrf)
    back = await consent(server, resp.headers["Location"])  # registered: never first-party (test_consent.py)
    status, tokens = await redeem(server, flow, query_of(back)["code"])
    assert status == 200, tokens
    assert tokens["id_token"] and tokens["refresh_token"]


async def test_an_initial_access_token_is_single_use_by_default(server):
    token = await initial_token(server)
    assert (await register(server, WEB, token))[0] == 201
    status, body, headers = await register(server, WEB, token)
    assert status == 401 and body["error"] == "invalid_token"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert len(await provider_of(server).store.clients.list_clients()) == 1


async def test_an_initial_access_token_with_uses_registers_that_many(server):
    token = await initial_token(server, uses=2)
    assert [(await register(server, WEB, token))[0] for _ in range(3)] == [201, 201, 401]


async def test_an_expired_initial_access_token_is_refused(server, redis):
    token = await initial_token(server, ttl=60)
    await redis.pexpireat(keyspace.initial_token(secret_digest(token)), 1)  # its time has come
    status, body, _ = await register(server, WEB, token)
    assert status == 401 and body["error"] == "invalid_token"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-token", "Basic d2ViOnNlY3JldA==",
                                           "Bearer a b"])
async def test_registration_without_a_valid_initial_token_is_401(server, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = await server.post(REGISTER, json=WEB, headers=headers)
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_token"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bearer_tokens_work_only_where_they_belong(server):
    _, one, _ = await register(server, WEB)
    _, other, _ = await register(server, WEB)
    spare = await initial_token(server)
    for token in (other["registration_access_token"], spare, one["client_secret"]):
        status, body, headers = await manage(server, "GET", path_of(one), token)
        assert status == 401 and body["error"] == "invalid_token" and "Bearer" in headers["WWW-Authenticate"]
        assert (await manage(server, "DELETE", path_of(one), token))[0] == 401
    assert await provider_of(server).store.clients.get_client(one["client_id"]) is not None
    # a registration access token registers nothing and is no access token
    assert (await register(server, WEB, one["registration_access_token"]))[0] == 401
    resp = await server.get("/oauth2/userinfo", headers=bearer(one["registration_access_token"]))
    assert resp.status == 401 and "invalid_token" in resp.headers["WWW-Authenticate"]


async def test_a_client_added_by_an_operator_cannot_be_managed_over_http(server):
    await admin.add_client(provider_of(server), "ops", ClientMetadata(grant_types=()))
    assert (await manage(server, "GET", REGISTER + "/ops", "anything"))[0] == 401
    assert (await manage(server, "DELETE", REGISTER + "/ops", "anything"))[0] == 401
    assert await provider_of(server).store.clients.get_client("ops") is not None


HOSTILE_REDIRECTS = [
    "javascript:alert(document.cookie)", "JavaScript:alert(1)//https://rp.example.org/", "data:text/html,<script>",
    "vbscript:msgbox", "file:///etc/passwd", "https://rp.example.org/cb#frag", "http://rp.example.org/cb",
    "https://*.example.org/cb", "https://rp.example.org:*/cb", "/relative/cb", "//rp.example.org/cb",
    "https://user:pass@rp.example.org/cb", "https://rp.example.org/c b", "https://rp.example.org/\x00",
    "https:///cb", "https://rp.example.org:99999/cb", "https://" + "a" * 3000 + ".org/",
]


@pytest.mark.parametrize("uri", HOSTILE_REDIRECTS)
async def test_hostile_redirect_uris_are_refused_and_spend_no_token(server, uri):
    token = await initial_token(server)
    status, body, _ = await register(server, {**WEB, "redirect_uris": ["https://rp.example.org/ok", uri]}, token)
    assert status == 400 and body["error"] == "invalid_redirect_uri", body
    assert len(body["error_description"]) <= 200
    assert not await provider_of(server).store.clients.list_clients()
    assert (await register(server, WEB, token))[0] == 201  # the token was not used up


async def test_a_hostile_post_logout_redirect_uri_is_refused_too(server):
    status, body, _ = await register(server, {**WEB, "post_logout_redirect_uris": ["javascript:alert(1)"]})
    assert status == 400 and body["error"] == "invalid_redirect_uri"


async def test_a_registered_client_gets_back_channel_logout_and_a_hostile_uri_is_refused(server):
    status, body, _ = await register(server, {**WEB, "backchannel_logout_uri": "https://rp.example.org/bcl"})
    assert status == 201
    assert (body["backchannel_logout_uri"], body["backchannel_logout_session_required"]) == (
        "https://rp.example.org/bcl", True)
    client = await provider_of(server).store.clients.get_client(body["client_id"])
    assert client.backchannel_logout_uri == "https://rp.example.org/bcl"
    for hostile in ("http://rp.example.org/bcl", "https://user:pw@rp.example.org/bcl", "javascript:alert(1)",
                    "https://rp.example.org/bcl#x", 42):
        status, refused, _ = await register(server, {**WEB, "backchannel_logout_uri": hostile})
        assert status == 400 and refused["error"] == "invalid_client_metadata", (hostile, refused)
    assert len(await provider_of(server).store.clients.list_clients()) == 1


async def test_a_registered_client_gets_allowed_origins_and_a_pattern_is_refused(server):
    status, body, _ = await register(server, {**WEB, "allowed_origins": ["https://RP.example.org:443"]})
    assert status == 201 and body["allowed_origins"] == ["https://rp.example.org"]
    client = await provider_of(server).store.clients.get_client(body["client_id"])
    assert client.allowed_origins == ("https://rp.example.org",)
    for hostile in (["https://*.example.org"], ["null"], ["https://rp.example.org/app"], "https://rp.example.org",
                    [42]):
        status, refused, _ = await register(server, {**WEB, "allowed_origins": hostile})
        assert status == 400 and refused["error"] == "invalid_client_metadata", (hostile, refused)
        assert "allowed_origins" in refused["error_description"]


@pytest.mark.parametrize("body, content_type", [
    (b"{not json", "application/json"), (b"[]", "application/json"), (b'"x"', "application/json"),
    (b"\xff\xfe", "application/json"), (json.dumps(WEB).encode(), "application/x-www-form-urlencoded"),
    (b'{"redirect_uris": ["https://rp.example.org/cb"], "x": "' + b"a" * 70_000 + b'"}', "application/json"),
])
async def test_unreadable_metadata_is_invalid_client_metadata(server, body, content_type):
    token = await initial_token(server)
    resp = await server.post(REGISTER, data=body, headers={**bearer(token), "Content-Type": content_type})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("metadata, words", [
    ({"token_endpoint_auth_method": "client_secret_jwt"}, "client_secret_jwt"),
    ({"token_endpoint_auth_method": "tls_client_auth"}, "unknown auth method"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "exactly one of jwks and jwks_uri"),
    ({"token_endpoint_auth_method": "client_secret_basic", "jwks_uri": "https://rp.example.org/jwks"}, "only for"),
    ({"grant_types": ["password"]}, "password grant"),
    ({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}, "token exchange"),
    ({"grant_types": ["implicit"], "response_types": []}, "unknown grant type"),
    ({"response_types": ["token"]}, "only code"),
    ({"grant_types": ["client_credentials"]}, "go together"),
    ({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"], "response_types": []},
     "public client"),
    ({"redirect_uris": "https://rp.example.org/cb"}, "list"),
    ({"redirect_uris": []}, "redirect_uri"),
    ({"client_name": "x" * 101}, "client_name"),
    ({"client_name": "bad\nname"}, "client_name"),
    ({"logo_uri": "http://cdn.example.org/logo.png"}, "logo_uri"),
    ({"logo_uri": "javascript:alert(1)"}, "logo_uri"),
    ({"tos_uri": "data:text/html,hi"}, "tos_uri"),
    ({"dpop_bound_access_tokens": "yes"}, "true or false"),
    ({"require_mfa": "yes"}, "require_mfa"),
    ({"jwks": "keys"}, "jwks"),
])
async def test_metadata_we_cannot_honour_is_refused_with_the_reason(server, metadata, words):
    status, body, _ = await register(server, {**WEB, **metadata})
    assert status == 400 and body["error"] in ("invalid_client_metadata", "invalid_redirect_uri"), body
    assert words in body["error_description"], body


async def test_private_key_jwt_and_client_secret_post_register(server):
    jwks = public_jwks(new_key())
    status, body, _ = await register(server, {**WEB, "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks})
    assert status == 201 and "client_secret" not in body and body["jwks"] == jwks
    status, body, _ = await register(server, {**WEB, "token_endpoint_auth_method": "client_secret_post"})
    assert status == 201 and body["client_secret"] and body["token_endpoint_auth_method"] == "client_secret_post"


async def test_scopes_are_narrowed_and_what_only_an_operator_decides_is_ignored(server):
    status, body, _ = await register(server, {
        **WEB, "scope": "openid admin profile", "first_party": True, "audience": "billing",
        "exchange_audiences": ["billing"], "software_statement": "eyJ...", "unknown_thing": {"x": 1}})
    assert status == 201 and body["scope"] == "openid profile"
    stored = await provider_of(server).store.clients.get_client(body["client_id"])
    assert not stored.first_party and stored.audience is None and not stored.exchange_audiences
    assert "unknown_thing" not in body and "first_party" not in body


async def test_an_update_is_checked_like_a_registration(server):
    _, body, _ = await register(server, WEB)
    uri, rat = path_of(body), body["registration_access_token"]
    hostile = {**WEB, "client_id": body["client_id"], "redirect_uris": ["javascript:alert(1)"]}
    status, refused, _ = await manage(server, "PUT", uri, rat, json=hostile)
    assert status == 400 and refused["error"] == "invalid_redirect_uri"
    status, refused, _ = await manage(server, "PUT", uri, rat, json={**WEB, "client_id": "someone-else"})
    assert status == 400 and refused["error"] == "invalid_client_metadata"
    status, refused, _ = await manage(server, "PUT", uri, rat,
                                      json={**WEB, "client_id": body["client_id"], "client_secret": "guess"})
    assert status == 400 and refused["error"] == "invalid_client_metadata"
    assert (await manage(server, "GET", uri, rat))[1]["redirect_uris"] == WEB["redirect_uris"]  # unchanged


async def test_an_update_to_a_secret_method_issues_a_secret(server):
    _, body, _ = await register(server, {**WEB, "token_endpoint_auth_method": "none"})
    change = {"client_id": body["client_id"], "grant_types": ["client_credentials"], "response_types": []}
    status, updated, _ = await manage(server, "PUT", path_of(body), body["registration_access_token"], json=change)
    assert status == 200 and updated["client_secret"] and updated["redirect_uris"] == []
    assert (await client_credentials(server, body["client_id"], updated["client_secret"]))[0] == 200


async def test_client_list_shows_registered_clients(server):
    _, body, _ = await register(server, WEB)
    await admin.add_client(provider_of(server), "ops", ClientMetadata(grant_types=()))
    views = {c.client_id: admin.client_view(c) for c in await provider_of(server).store.clients.list_clients()}
    assert views[body["client_id"]]["registered"] is True and views["ops"]["registered"] is False
    assert "registration_token_digest" not in views[body["client_id"]]


async def test_the_login_page_names_the_client_and_escapes_it(server):
    status, body, _ = await register(server, {**WEB, "redirect_uris": [REDIRECT], "client_name": "<script>x()</script>",
                                              "logo_uri": "https://cdn.example.org/l.png",
                                              "policy_uri": "https://rp.example.org/privacy"})
    assert status == 201, body
    resp = await server.get("/oauth2/authorize", params={
        "client_id": body["client_id"], "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"},
        allow_redirects=False)
    html = await (await server.get(resp.headers["Location"])).text()
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "<script>" not in html
    assert 'src="https://cdn.example.org/l.png"' in html and 'referrerpolicy="no-referrer"' in html
    assert 'href="https://rp.example.org/privacy"' in html


async def test_an_unreachable_store_fails_closed_with_503(make_client, settings, tmp_path):
    async with doomed_store(make_client, dataclasses.replace(settings, registration="on"), tmp_path) as (server, store):
        token = await initial_token(server)
        _, body, _ = await register(server, WEB)
        store.stop()
        resp = await server.post(REGISTER, json=WEB, headers=bearer(token))
        assert resp.status == 503 and (await resp.json())["error"] == "temporarily_unavailable"
        resp = await server.get(path_of(body), headers=bearer(body["registration_access_token"]))
        assert resp.status == 503


async def test_of_two_concurrent_updates_with_one_token_exactly_one_wins(server):
    _, body, _ = await register(server, WEB)
    uri, rat = path_of(body), body["registration_access_token"]
    names = ("First", "Second")
    answers = await asyncio.gather(*(manage(server, "PUT", uri, rat, json={**WEB, "client_id": body["client_id"],
                                                                             "client_name": name}) for name in names))
    assert sorted(status for status, _, _ in answers) == [200, 401]
    winner = next(answer for status, answer, _ in answers if status == 200)
    status, read, _ = await manage(server, "GET", uri, winner["registration_access_token"])
    assert status == 200 and read["client_name"] == winner["client_name"]  # the record is the winner's


async def test_every_read_and_update_answer_carries_the_token_to_use_next(server):
    """RFC 7592 §3: registration_access_token is REQUIRED in the client information response.
    Only its digest is kept, so each answer carries a new one and the one presented stops."""
    _, body, _ = await register(server, WEB)
    uri, rat = path_of(body), body["registration_access_token"]
    status, read, headers = await manage(server, "GET", uri, rat)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert read["registration_access_token"] not in ("", rat)
    assert read["registration_client_uri"] == body["registration_client_uri"]
    status, refused, headers = await manage(server, "GET", uri, rat)
    assert (status, refused["error"]) == (401, "invalid_token") and "WWW-Authenticate" in headers
    rat = read["registration_access_token"]
    stored = await provider_of(server).store.clients.get_client(body["client_id"])
    assert stored.registration_token_digest == secret_digest(rat)  # still only the digest
    status, updated, _ = await manage(server, "PUT", uri, rat, json={**WEB, "client_id": body["client_id"]})
    assert status == 200 and updated["registration_access_token"] not in ("", rat)
    assert (await manage(server, "PUT", uri, rat, json={**WEB, "client_id": body["client_id"]}))[0] == 401
    status, read, _ = await manage(server, "GET", uri, updated["registration_access_token"])
    assert status == 200 and read["client_name"] == "Example RP"
    assert (await manage(server, "DELETE", uri, read["registration_access_token"]))[0] == 204


async def test_a_read_changes_nothing_but_the_token(server):
    _, body, _ = await register(server, WEB)
    before = (await provider_of(server).store.clients.get_client(body["client_id"])).to_json()
    status, read, _ = await manage(server, "GET", path_of(body), body["registration_access_token"])
    assert status == 200
    after = (await provider_of(server).store.clients.get_client(body["client_id"])).to_json()
    assert after.pop("registration_token_digest") == secret_digest(read["registration_access_token"])
    assert before.pop("registration_token_digest") == secret_digest(body["registration_access_token"])
    assert after == before
    status, tokens = await client_credentials(server, body["client_id"], body["client_secret"])
    assert status == 400 and tokens["error"] == "unauthorized_client"  # the secret still authenticates


async def test_of_two_concurrent_reads_with_one_token_exactly_one_gets_the_next_token(server):
    _, body, _ = await register(server, WEB)
    uri, rat = path_of(body), body["registration_access_token"]
    answers = await asyncio.gather(*(manage(server, "GET", uri, rat) for _ in range(2)))
    assert sorted(status for status, _, _ in answers) == [200, 401]
    winner = next(answer for status, answer, _ in answers if status == 200)
    assert (await manage(server, "GET", uri, winner["registration_access_token"]))[0] == 200


async def test_the_device_page_names_the_client_too(server):
    await add_user(server)
    await admin.add_client(provider_of(server), "tv", ClientMetadata(public=True, grant_types=("device_code",),
                           scope=("openid",), client_name="Living <room> TV"))
    status, started = await start(server, "tv")
    assert status == 200, started
    await signed_in(server)
    status, html = await page(server, started["user_code"])
    assert status == 200 and 'id="device-client">Living &lt;room&gt; TV</strong>' in html


async def test_without_a_token_no_metadata_is_looked_at(server):
    resp = await server.post(REGISTER, json={"redirect_uris": ["javascript:alert(1)"]}, headers=bearer("wrong"))
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_token"
    resp = await server.post(REGISTER, data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 401
    resp = await server.put(REGISTER + "/someone", data=b"x", headers={**bearer("wrong"), "Content-Type": "text/plain"})
    assert resp.status == 401


async def test_a_client_may_register_as_requiring_mfa(server):
    status, body, _ = await register(server, {**WEB, "require_mfa": True})
    assert status == 201 and body["require_mfa"] is True, body
    assert (await provider_of(server).store.clients.get_client(body["client_id"])).require_mfa


async def test_an_update_keeps_the_overlap_of_a_secret_an_operator_rotated(server):
    status, body, _ = await register(server, {"grant_types": ["client_credentials"], "response_types": []})
    assert status == 201, body
    client_id, old = body["client_id"], body["client_secret"]
    new = (await admin.rotate_secret(provider_of(server), client_id, 3600))["client_secret"]
    update = {"client_id": client_id, "grant_types": ["client_credentials"], "response_types": [],
              "client_name": "Renamed"}
    status, updated, _ = await manage(server, "PUT", path_of(body), body["registration_access_token"], json=update)
    assert status == 200, updated
    assert (await client_credentials(server, client_id, old))[0] == 200  # still within its overlap
    assert (await client_credentials(server, client_id, new))[0] == 200


async def test_an_update_racing_an_operators_rotation_keeps_the_new_secret(server, monkeypatch):
    """The interleaving forced: the operator rotates the secret just after the self-update read
    the record. The update builds on the record as it is when written (WATCH), so the rotated
    secret and its overlap stay; before, the update wrote the old secret back."""
    status, body, _ = await register(server, {"grant_types": ["client_credentials"], "response_types": []})
    assert status == 201, body
    client_id, old = body["client_id"], body["client_secret"]
    clients, rotated = provider_of(server).store.clients, {}
    read = clients.get_client

    async def read_then_rotate(wanted: str):
        found = await read(wanted)
        if not rotated:  # once, between the update's read and its write
            rotated.update(await admin.rotate_secret(provider_of(server), client_id, 3600))
        return found
    monkeypatch.setattr(clients, "get_client", read_then_rotate)
    update = {"client_id": client_id, "grant_types": ["client_credentials"], "response_types": [],
              "client_name": "Renamed"}
    status, updated, _ = await manage(server, "PUT", path_of(body), body["registration_access_token"], json=update)
    assert status == 200 and updated["client_name"] == "Renamed" and rotated, updated
    monkeypatch.undo()
    for secret in (rotated["client_secret"], old):  # the new one, and the old within its overlap
        assert (await client_credentials(server, client_id, secret))[0] == 200
