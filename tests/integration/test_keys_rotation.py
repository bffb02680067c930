"""Key rotation inside running apps: injected clock, shared keys/ and store, corrupt files."""
from __future__ import annotations

import asyncio
import base64
import dataclasses

import jwt as pyjwt
import pytest

from tests.helpers.app import provider_of
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

ROTATION = {"key_rotation_period": 1000, "jwks_max_age": 100, "access_token_ttl": 300, "id_token_ttl": 300,
            "key_check_interval": 0}


async def jwks_kids(client) -> list[str]:
    resp = await client.get("/.well-known/jwks.json")
    return [k["kid"] for k in (await resp.json())["keys"]]


async def client_credentials_token(client, secret: str) -> str:
    auth = "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": auth})
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["access_token"])


def verify_with_jwks(token: str, jwks: dict, issuer: str) -> dict:
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(pyjwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    # the injected clock runs ahead of the real one: PyJWT gets the difference as leeway
    return pyjwt.decode(token, key, algorithms=["RS256"], audience="svc", issuer=issuer, leeway=3600)


async def test_rotation_walks_the_lifecycle_under_an_injected_clock(make_client, settings, clock):
    client = await make_client(settings, **ROTATION)
    keys = provider_of(client).keys
    first = keys.ring.signing.kid
    upcoming = next(k.kid for k in keys.ring.keys if k.state == "next")
    assert set(await jwks_kids(client)) == {first, upcoming}
    clock.advance(999)
    assert await keys.tick() == []
    clock.advance(1)
    steps = await keys.tick()
    assert [s.action for s in steps] == ["promote", "create"]
    assert keys.ring.signing.kid == upcoming
    assert {k.kid: k.state for k in keys.ring.keys}[first] == "retired"
    assert len(await jwks_kids(client)) == 3
    clock.advance(399)
    assert await keys.tick() == []
    clock.advance(1)
    assert [s.action for s in await keys.tick()] == ["remove"]
    assert first not in await jwks_kids(client)


async def test_token_signed_just_before_a_rotation_verifies_against_the_jwks_just_after(
        make_client, settings, clock):
    client = await make_client(settings, **ROTATION)
    p = provider_of(client)
    secret = (await admin.add_client(p, "svc", ClientMetadata(grant_types=["client_credentials"],
                                     scope=[], post_logout_redirect_uris=[])))["client_secret"]
    clock.advance(999)
    before = await client_credentials_token(client, secret)
    clock.advance(1)
    assert await p.keys.tick()
    after_jwks = await (await client.get("/.well-known/jwks.json")).json()
    after = await client_credentials_token(client, secret)
    assert pyjwt.get_unverified_header(before)["kid"] != pyjwt.get_unverified_header(after)["kid"]
    for token in (before, after):
        claims = pyjwt.decode(token, options={"verify_signature": False})
        assert verify_with_jwks(token, after_jwks, settings.issuer) == claims


async def test_two_instances_sharing_keys_and_store_perform_each_step_once(make_client, settings, clock):
    one = await make_client(settings, **ROTATION)
    two = await make_client(settings, **ROTATION)  # same keys/ folder, same store
    assert provider_of(one).keys.ring.jwks_etag == provider_of(two).keys.ring.jwks_etag
    assert len(provider_of(two).keys.ring.keys) == 2  # the second instance created nothing
    clock.advance(1000)
    first_steps, second_steps = await asyncio.gather(provider_of(one).keys.tick(), provider_of(two).keys.tick())
    performed = [s.action for s in first_steps + second_steps]
    assert performed == ["promote", "create"]
    # the instance that did nothing picks the change up from keys/
    await provider_of(one).keys.reload()
    await provider_of(two).keys.reload()
    assert provider_of(one).keys.ring.jwks_etag == provider_of(two).keys.ring.jwks_etag
    assert provider_of(one).keys.ring.signing.kid == provider_of(two).keys.ring.signing.kid
    assert len(provider_of(one).keys.ring.keys) == 3


async def test_a_corrupt_key_file_is_reported_and_does_not_take_the_server_down(
        make_client, settings, caplog):
    client = await make_client(settings)
    (settings.keys_dir / "garbage.json").write_text("{ this is not a key")
    await provider_of(client).keys.reload()
    assert any("garbage.json" in r.getMessage() for r in caplog.records)
    assert (await client.get("/.well-known/jwks.json")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_no_usable_signing_key_means_not_ready(make_client, settings):
    client = await make_client(settings)
    for path in settings.keys_dir.glob("*.json"):
        path.write_text("corrupted")
    await provider_of(client).keys.reload()
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "no usable signing key" in " ".join((await resp.json())["reasons"])
    token = await client.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert token.status in (401, 503)  # never a 500


async def test_requested_rotation_promotes_only_once_the_next_key_was_published_for_max_age(
        make_client, settings, clock):
    client = await make_client(settings, **ROTATION)
    keys = provider_of(client).keys
    signing = keys.ring.signing.kid
    upcoming = next(k.kid for k in keys.ring.keys if k.state == "next")
    clock.advance(50)
    assert await keys.rotate_now() == []  # next key published 50 s ago: caches may not have it
    assert keys.ring.signing.kid == signing
    clock.advance(50)
    assert [s.action for s in await keys.tick()] == ["promote", "create"]
    assert keys.ring.signing.kid == upcoming


async def test_another_algorithm_is_a_configuration_choice(make_client, settings):
    client = await make_client(dataclasses.replace(settings, key_algorithm="ES256"))
    resp = await client.get("/.well-known/jwks.json")
    assert {k["alg"] for k in (await resp.json())["keys"]} == {"ES256"}
