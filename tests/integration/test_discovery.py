"""Discovery documents, the JWKS and its caching headers, health, readiness, unknown routes."""
from __future__ import annotations

import dataclasses

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from tests.helpers.app import provider_of
from tests.helpers.ports import free_port


async def test_rfc8414_metadata_is_valid(client, settings):
    resp = await client.get("/.well-known/oauth-authorization-server")
    assert resp.status == 200 and resp.content_type == "application/json"
    metadata = AuthorizationServerMetadata(await resp.json())
    metadata.validate()
    assert metadata["issuer"] == settings.issuer


async def test_openid_discovery_is_valid_and_advertises_every_endpoint(client, settings):
    resp = await client.get("/.well-known/openid-configuration")
    doc = await resp.json()
    OpenIDProviderMetadata(doc).validate()
    for name in ("token_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint",
                 "userinfo_endpoint", "end_session_endpoint", "authorization_endpoint"):
        assert doc[name].startswith(settings.issuer + "/")
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]


async def test_jwks_has_cache_headers_etag_and_answers_304(client, settings):
    resp = await client.get("/.well-known/jwks.json")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == f"public, max-age={settings.jwks_max_age}"
    etag = resp.headers["ETag"]
    again = await client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    other = await client.get("/.well-known/jwks.json", headers={"If-None-Match": '"stale"'})
    assert other.status == 200


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"


async def test_unknown_paths_and_methods_get_json_errors(client):
    missing = await client.get("/no/such/path")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"
    wrong = await client.delete("/oauth2/token")
    assert wrong.status == 405 and (await wrong.json())["error"] == "method_not_allowed"
    wrong_get = await client.get("/oauth2/token")
    assert wrong_get.status == 405


async def test_store_unreachable_means_not_ready_but_keys_keep_serving(make_client, settings, client):
    # a second app over the same keys, pointed at a port where nothing listens
    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = await make_client(dead, create_keys=False)  # the keys exist: `client` made them
    ready = await app.get("/readyz")
    assert ready.status == 503 and "store unreachable" in (await ready.json())["reasons"]
    assert (await app.get("/.well-known/jwks.json")).status == 200
    assert (await app.get("/.well-known/openid-configuration")).status == 200
    token = await app.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": "x",
                                                   "client_secret": "y"})
    assert token.status == 503 and (await token.json())["error"] == "temporarily_unavailable"


async def test_not_ready_while_the_client_cache_does_not_follow_changes(client):
    """Ready means able to serve: a process whose cache has no live change subscription could
    answer from a stale client record, so it is not ready until the subscription is back."""
    store = provider_of(client).store
    await store.stop_following()  # as while the subscription is lost or not yet confirmed
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["reasons"] == ["not following client changes"]
    assert (await client.get("/.well-known/jwks.json")).status == 200  # what needs no store still serves


async def test_not_ready_until_the_claim_rules_document_has_been_read(make_client, settings, client):
    """A process that started while the store was down serves the fallback rules until it reads the
    store's document: not ready until then, so a load balancer sends it no token request."""
    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = await make_client(dead, create_keys=False)
    assert provider_of(app).claim_rules.read is False
    reasons = (await (await app.get("/readyz")).json())["reasons"]
    assert "claim rules not read from the store yet" in reasons
    rules = provider_of(client).claim_rules  # the store answered at start: read
    assert rules.read is True and (await client.get("/readyz")).status == 200
