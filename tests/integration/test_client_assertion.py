"""private_key_jwt (RFC 7523 §2.2, OIDC Core §9) at the token, revocation and introspection
endpoints, with the attacks on it: replay, another audience, expiry, iss != sub, a key not the
client's, alg none and HS256 keyed with the public key, two methods at once, unknown kids and a
jwks_uri served by a real HTTP server."""
from __future__ import annotations

import json

import pytest

from tests.helpers.app import provider_of
from tests.helpers.assertion import (
    JWKSServer,
    assertion_form,
    claims_for,
    hs256_with,
    new_key,
    public_jwks,
    sign,
    unsigned,
)
from tests.helpers.oauth import add_client, basic, post
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata


@pytest.fixture
def issuer(settings):
    return settings.issuer


@pytest.fixture
def token_url(issuer):
    return issuer + "/oauth2/token"


async def register(client, client_id="svc", jwks=None, jwks_uri=None, **kw):
    return await admin.add_client(provider_of(client), client_id, ClientMetadata(
        grant_types=("client_credentials",), scope=("read",), token_endpoint_auth_method="private_key_jwt",
        jwks=jwks, jwks_uri=jwks_uri, **kw))


def now_of(client) -> int:
    return provider_of(client).now()


async def token_with(client, assertion, **params):
    return await post(client, "/oauth2/token", assertion_form(assertion, grant_type="client_credentials", **params))


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_each_advertised_algorithm_authenticates(client, token_url, alg):
    key = new_key(alg)
    created = await register(client, jwks=public_jwks(key))
    assert created == {"client_id": "svc", "token_endpoint_auth_method": "private_key_jwt"}  # no secret
    status, body, headers = await token_with(client, sign(key, claims_for("svc", token_url, now_of(client)), alg))
    assert status == 200, body
    assert body["token_type"] == "Bearer" and headers["Cache-Control"] == "no-store"


async def test_aud_may_be_the_issuer_or_a_list_naming_us(client, issuer, token_url):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    for aud in (issuer, [token_url, "https://elsewhere.example"]):
        status, body, _ = await token_with(client, sign(key, claims_for("svc", aud, now_of(client))))
        assert status == 200, (aud, body)


async def test_a_replayed_assertion_is_refused(client, token_url):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    assertion = sign(key, claims_for("svc", token_url, now_of(client)))
    assert (await token_with(client, assertion))[0] == 200
    status, body, headers = await token_with(client, assertion)
    assert (status, body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in headers


@pytest.mark.parametrize("changes", [
    {"aud": "https://another-server.example/oauth2/token"},  # meant for someone else
    {"aud": None},  # aud is required
    {"exp": "EXPIRED"},
    {"exp": None},  # exp is required
    {"exp": "FAR"},  # valid for longer than allowed
    {"nbf": "FUTURE"},
    {"iat": "FUTURE"},
    {"jti": None},  # jti is required: single use needs it
    {"iss": "other"},  # iss != sub
    {"sub": "other", "iss": "other"},  # another client's name: its keys are not these
], ids=["other-aud", "no-aud", "expired", "no-exp", "exp-too-far", "nbf-future", "iat-future", "no-jti",
        "iss-not-sub", "other-client"])
async def test_bad_claims_are_invalid_client(client, token_url, changes):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    await register(client, "other", jwks=public_jwks(new_key()))
    now = now_of(client)
    times = {"EXPIRED": now - 120, "FAR": now + 3 * 3600, "FUTURE": now + 600}
    claims = claims_for("svc", token_url, now)
    claims.update({k: times.get(v, v) if isinstance(v, str) else v for k, v in changes.items()})
    claims = {k: v for k, v in claims.items() if v is not None}
    status, body, _ = await token_with(client, sign(key, claims))
    assert (status, body["error"]) == (401, "invalid_client"), claims


async def test_an_assertion_for_the_introspection_endpoint_is_refused_at_the_token_endpoint(client, issuer):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    status, body, _ = await token_with(client, sign(key, claims_for("svc", issuer + "/oauth2/introspect",
                                                                    now_of(client))))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_a_key_not_in_the_clients_jwks_is_refused(client, token_url):
    mine, stranger = new_key(kid="k1"), new_key(kid="k1")  # same kid, another key
    await register(client, jwks=public_jwks(mine))
    status, body, _ = await token_with(client, sign(stranger, claims_for("svc", token_url, now_of(client))))
    assert (status, body["error"]) == (401, "invalid_client")
    unknown = new_key(kid="k2")
    status, body, _ = await token_with(client, sign(unknown, claims_for("svc", token_url, now_of(client))))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_alg_none_and_hs256_keyed_with_the_public_key_are_refused(client, token_url):
    key = new_key(kid="k1")
    jwks = public_jwks(key)
    await register(client, jwks=jwks)
    claims = claims_for("svc", token_url, now_of(client))
    public_pem = key.as_pem(private=False)
    for forged in (unsigned(claims, kid="k1"), unsigned(claims),
                   hs256_with(public_pem, claims, "k1"),
                   hs256_with(json.dumps(jwks["keys"][0]).encode(), claims, "k1"),
                   sign(key, claims, "RS512")):  # a good signature with an algorithm not allowed
        status, body, _ = await token_with(client, forged)
        assert (status, body["error"]) == (401, "invalid_client"), forged[:40]
    assert (await token_with(client, sign(key, claims)))[0] == 200  # the genuine one still works


async def test_malformed_assertions_are_invalid_client_never_500(client, token_url):
    await register(client, jwks=public_jwks(new_key()))
    for junk in ("", "a.b", "a.b.c", "e30.e30.", "x" * 5000, "eyJhbGciOiJSUzI1NiJ9.W10.c2ln"):
        status, body, _ = await post(client, "/oauth2/token", {
            **assertion_form(junk or "x"), "grant_type": "client_credentials"})
        assert status in (400, 401) and body["error"] in ("invalid_client", "invalid_request"), (junk[:20], body)


async def test_exactly_one_method_per_request(client, token_url):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    secret_client = await add_client(client, "secret-svc", scopes=("read",))
    good = sign(key, claims_for("svc", token_url, now_of(client)))
    status, body, _ = await post(client, "/oauth2/token", assertion_form(good, grant_type="client_credentials"),
                                 secret_client.basic)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body, _ = await post(client, "/oauth2/token", assertion_form(
        good, grant_type="client_credentials", client_secret="whatever"))
    assert (status, body["error"]) == (400, "invalid_request")
    status, body, _ = await post(client, "/oauth2/token", {
        "client_assertion": good, "grant_type": "client_credentials"})  # no type
    assert (status, body["error"]) == (400, "invalid_request")
    status, body, _ = await post(client, "/oauth2/token", assertion_form(
        good, grant_type="client_credentials", client_assertion_type="urn:example:saml"))
    assert (status, body["error"]) == (401, "invalid_client")
    status, body, _ = await post(client, "/oauth2/token", assertion_form(
        good, grant_type="client_credentials", client_id="secret-svc"))  # client_id differs from sub
    assert (status, body["error"]) == (401, "invalid_client")


async def test_only_the_registered_method_authenticates_a_client(client, token_url):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    secret_client = await add_client(client, "secret-svc", scopes=("read",))
    # a private_key_jwt client has no secret, and naming itself is not authenticating
    for form in ({"client_id": "svc"}, {"client_id": "svc", "client_secret": ""}):
        status, body, _ = await post(client, "/oauth2/token", {**form, "grant_type": "client_credentials"})
        assert (status, body["error"]) == (401, "invalid_client")
    status, body, _ = await post(client, "/oauth2/token", {"grant_type": "client_credentials"}, basic("svc", "x"))
    assert (status, body["error"]) == (401, "invalid_client")
    # a secret client cannot switch to an assertion, even one signed with a key of its own making
    rogue = new_key()
    status, body, _ = await token_with(client, sign(rogue, claims_for("secret-svc", token_url, now_of(client))))
    assert (status, body["error"]) == (401, "invalid_client")
    assert (await post(client, "/oauth2/token", {"grant_type": "client_credentials"}, secret_client.basic))[0] == 200


async def test_revocation_and_introspection_accept_assertions_for_their_endpoint(client, issuer, token_url):
    key = new_key()
    await register(client, jwks=public_jwks(key))
    status, issued, _ = await token_with(client, sign(key, claims_for("svc", token_url, now_of(client))))
    assert status == 200
    access = issued["access_token"]
    status, body, _ = await post(client, "/oauth2/introspect", assertion_form(
        sign(key, claims_for("svc", issuer + "/oauth2/introspect", now_of(client))), token=access))
    assert status == 200 and body["active"] is True and body["client_id"] == "svc"
    status, body, _ = await post(client, "/oauth2/revoke", assertion_form(
        sign(key, claims_for("svc", issuer + "/oauth2/revoke", now_of(client))), token=access))
    assert status == 200
    status, body, _ = await post(client, "/oauth2/introspect", assertion_form(
        sign(key, claims_for("svc", token_url, now_of(client))), token=access))  # the token endpoint: also fine
    assert status == 200 and body == {"active": False}


async def test_failed_assertions_count_toward_the_lockout(make_client, settings, token_url):
    client = await make_client(settings, client_auth_max_failures=3)
    key = new_key()
    await register(client, jwks=public_jwks(key))
    bad = sign(new_key(), claims_for("svc", token_url, now_of(client)))
    statuses = [(await token_with(client, bad))[0] for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    status, body, headers = await token_with(client, sign(key, claims_for("svc", token_url, now_of(client))))
    assert (status, body["error"]) == (429, "slow_down") and "Retry-After" in headers  # even a right one


# ---- jwks_uri: a real HTTP server in the test ----

@pytest.fixture
async def jwks_server(aiohttp_server):
    async def start(jwks):
        served = JWKSServer(jwks)
        server = await aiohttp_server(served.app())
        return served, str(server.make_url("/jwks.json"))
    return start


async def test_jwks_uri_is_fetched_cached_and_refetched_for_an_unknown_kid_within_limits(
        client, clock, token_url, jwks_server):
    first = new_key(kid="k1")
    served, uri = await jwks_server(public_jwks(first))
    await register(client, jwks_uri=uri)

    async def attempt(key):
        return (await token_with(client, sign(key, claims_for("svc", token_url, now_of(client)))))[0]

    assert await attempt(first) == 200 and served.fetches == 1
    assert await attempt(first) == 200 and served.fetches == 1  # cached

    # the client rotates: its new key is found by one refetch
    second = new_key(kid="k2")
    served.jwks = public_jwks(first, second)
    clock.advance(11)
    assert await attempt(second) == 200 and served.fetches == 2

    # random kids: at most one fetch per interval, however many assertions name them
    statuses = [await attempt(new_key(kid=f"random-{i}")) for i in range(5)]
    assert statuses == [401] * 5 and served.fetches == 2  # the last fetch was under 10 s ago
    clock.advance(11)
    assert await attempt(new_key(kid="random-x")) == 401 and served.fetches == 3
    assert await attempt(new_key(kid="random-y")) == 401 and served.fetches == 3
    assert await attempt(second) == 200 and served.fetches == 3  # known kids need no fetch

    # once stale, the cache is fetched again
    clock.advance(301)
    assert await attempt(first) == 200 and served.fetches == 4


@pytest.mark.parametrize("problem", ["status", "too-large", "not-json", "private-key", "redirect"])
async def test_a_bad_jwks_uri_answer_is_invalid_client(client, token_url, jwks_server, problem):
    key = new_key(kid="k1")
    served, uri = await jwks_server(public_jwks(key))
    if problem == "status":
        served.status = 500
    elif problem == "too-large":
        served.body = b'{"keys": [], "pad": "' + b"x" * 70_000 + b'"}'
    elif problem == "not-json":
        served.body = b"<html>"
    elif problem == "private-key":
        served.jwks = {"keys": [key.as_dict(private=True)]}
    else:
        served.redirect_to = "http://127.0.0.1:1/jwks.json"
    await register(client, jwks_uri=uri)
    status, body, _ = await token_with(client, sign(key, claims_for("svc", token_url, now_of(client))))
    assert (status, body["error"]) == (401, "invalid_client")
    assert served.fetches == 1


@pytest.mark.parametrize("jwks_uri", ["http://example.com/jwks.json", "ftp://example.com/jwks",
                                      "https://user:pw@example.com/jwks", "jwks.json"])
async def test_registration_refuses_unsafe_jwks_uris(client, jwks_uri):
    with pytest.raises(admin.AdminError):
        await register(client, jwks_uri=jwks_uri)


async def test_registration_refuses_private_keys_and_needs_exactly_one_key_source(client):
    key = new_key()
    with pytest.raises(admin.AdminError, match="private"):
        await register(client, jwks={"keys": [key.as_dict(private=True)]})
    with pytest.raises(admin.AdminError, match="private"):
        await register(client, jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    with pytest.raises(admin.AdminError, match="exactly one"):
        await register(client)
    with pytest.raises(admin.AdminError, match="exactly one"):
        await register(client, jwks=public_jwks(key), jwks_uri="https://example.com/jwks.json")
