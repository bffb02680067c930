"""Who may call the admin API: only a bearer token of ours, live, for the admin audience with the
tokensrv:admin scope, of a client that is still there and still admin (read at every request). No
other client gets the scope, not by asking, not by registering; failures are rate limited per
address; a store that cannot answer fails the request (503)."""
from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest

from tests.helpers.admin_api import AdminAPI, add_admin_client, admin_token, start_admin_api
from tests.helpers.app import provider_of
from tests.helpers.dpop import DPoPKey
from tests.helpers.oauth import Registered, add_client, claims_of, post, revoke, token
from tests.helpers.ports import free_port
from tokensrv.admin import operations as admin
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.oauth.clients.fields import MetadataChange

INVALID = 'Bearer error="invalid_token"'
INSUFFICIENT = 'Bearer error="insufficient_scope", scope="tokensrv:admin"'


@pytest.fixture
async def api(make_client, settings):
    async with aiohttp.ClientSession() as http:
        yield await start_admin_api(make_client, dataclasses.replace(settings, registration="on"), http)


async def refused(api: AdminAPI, bearer: str | None, status: int, challenge: str, **headers: str) -> None:
    answer_status, body, response = await api.call("GET", "/admin/clients", token_value=bearer or "",
                                                    headers=headers)
    assert answer_status == status, body
    assert response.headers["WWW-Authenticate"] == challenge
    if "error=" in challenge:
        assert body["error"] == challenge.split('"')[1]


async def test_the_admin_token_works_and_is_for_the_admin_audience_only(api: AdminAPI):
    assert (await api.call("GET", "/admin/clients"))[0] == 200
    claims = claims_of(api.bearer)
    assert claims["aud"].endswith("/admin") and claims["scope"] == "tokensrv:admin" and claims["sub"] == "ops"


async def test_no_token_is_401_with_a_bare_challenge(api: AdminAPI):
    await refused(api, None, 401, 'Bearer realm="tokensrv"')


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer not-a-jwt", "Basic b3BzOnNlY3JldA==",
                                           "Bearer a.b.c", "Bearer " + "x" * 6000])
async def test_a_malformed_token_is_401_invalid_token(api: AdminAPI, authorization):
    await refused(api, None, 401, INVALID, Authorization=authorization)


async def test_an_expired_token_is_refused(api: AdminAPI, clock):
    clock.advance(provider_of(api.public).settings.access_token_ttl + 1)
    await refused(api, api.bearer, 401, INVALID)


async def test_a_revoked_token_is_refused(api: AdminAPI):
    assert (await admin.revoke_token(provider_of(api.public), api.bearer))["revoked"]
    await refused(api, api.bearer, 401, INVALID)


async def test_a_token_revoked_by_its_client_over_rfc_7009_is_refused(api: AdminAPI):
    ops = await add_admin_client(api.public, "ops2")
    bearer = await admin_token(api.public, ops)
    assert await revoke(api.public, ops, bearer) == 200
    await refused(api, bearer, 401, INVALID)


async def test_a_dpop_bound_admin_token_presented_as_a_bearer_token_is_refused(api: AdminAPI):
    p, ops = provider_of(api.public), await add_admin_client(api.public, "ops2")
    proof = DPoPKey().proof("POST", p.settings.issuer + "/oauth2/token", p.clock())
    status, body, _ = await post(api.public, "/oauth2/token", {"grant_type": "client_credentials",
                                                               "scope": "tokensrv:admin"}, {**ops.basic, "DPoP": proof})
    assert status == 200 and claims_of(body["access_token"])["cnf"], body
    await refused(api, body["access_token"], 401, INVALID)  # the stolen token without its key is useless


async def test_a_non_admin_client_cannot_get_the_scope_and_its_tokens_are_403(api: AdminAPI):
    svc = await add_client(api.public, "svc", scopes=("read",))
    status, body, _ = await token(api.public, svc, grant_type="client_credentials", scope="tokensrv:admin")
    assert (status, body["error"]) == (400, "invalid_scope")
    await refused(api, await admin_token(api.public, svc, scope="read"), 403, INSUFFICIENT)


async def test_an_admin_client_asking_without_the_scope_gets_no_admin_token(api: AdminAPI):
    ops = await add_admin_client(api.public, "ops2", scope=("read",))
    status, body, _ = await token(api.public, ops, grant_type="client_credentials")
    assert status == 200 and "tokensrv:admin" not in body["scope"].split()
    await refused(api, body["access_token"], 403, INSUFFICIENT)
    status, body, _ = await token(api.public, ops, grant_type="client_credentials", scope="read tokensrv:admin")
    assert (status, body["error"]) == (400, "invalid_scope")  # asked alone, never mixed


async def test_unmarking_the_client_ends_its_tokens_use_at_once(api: AdminAPI):
    p = provider_of(api.public)
    await admin.update_client(p, "ops", MetadataChange({"admin": False}))
    await refused(api, api.bearer, 403, INSUFFICIENT)
    await admin.update_client(p, "ops", MetadataChange({"admin": True}))
    assert (await api.call("GET", "/admin/clients"))[0] == 200  # the same token, marked again


async def test_removing_the_client_ends_its_tokens_use_at_once(api: AdminAPI):
    await admin.remove_client(provider_of(api.public), "ops")
    await refused(api, api.bearer, 401, INVALID)


async def test_a_removed_and_re_added_client_does_not_revive_the_old_token(api: AdminAPI, clock):
    await admin.remove_client(provider_of(api.public), "ops")
    clock.advance(1)
    ops = await add_admin_client(api.public, "ops")
    await refused(api, api.bearer, 401, INVALID)
    assert (await api.call("GET", "/admin/clients", token_value=await admin_token(api.public, ops)))[0] == 200


async def test_a_token_older_than_its_client_is_refused(api: AdminAPI, clock):
    p = provider_of(api.public)  # removed behind the API's back (no deny-list entry), then added again
    assert await p.store.clients.remove_client("ops")
    clock.advance(1)
    await add_admin_client(api.public, "ops")
    await refused(api, api.bearer, 401, INVALID)


async def test_rotating_the_secret_without_overlap_ends_its_tokens(api: AdminAPI, clock):
    status, rotated, _ = await api.call("POST", "/admin/clients/ops/secret", {"overlap": 60})
    assert status == 200 and (await api.call("GET", "/admin/clients"))[0] == 200  # an overlap: they run out
    status, rotated, _ = await api.call("POST", "/admin/clients/ops/secret", {"overlap": 0})
    assert status == 200
    await refused(api, api.bearer, 401, INVALID)
    clock.advance(1)
    bearer = await admin_token(api.public, Registered("ops", rotated["client_secret"]))
    assert (await api.call("GET", "/admin/clients", token_value=bearer))[0] == 200


async def test_a_public_or_user_facing_client_cannot_be_admin(api: AdminAPI):
    for body in ({"client_id": "spa", "public": True, "redirect_uris": ["https://a.example/cb"],
                  "admin": True},
                 {"client_id": "web", "grant_types": ["authorization_code"],
                  "redirect_uris": ["https://a.example/cb"], "admin": True},
                 {"client_id": "svc", "scope": ["tokensrv:admin"]}):
        status, answer, _ = await api.call("POST", "/admin/clients", body)
        assert status == 400 and "admin" in answer["error_description"], answer


async def test_rfc_7591_registration_cannot_make_an_admin_client(api: AdminAPI):
    p = provider_of(api.public)
    initial = (await admin.mint_initial_token(p, 3600, 1))["initial_access_token"]
    response = await api.public.post("/oauth2/register", headers={"Authorization": f"Bearer {initial}"}, json={
        "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic",
        "response_types": [], "admin": True, "scope": "tokensrv:admin"})
    registered = await response.json()
    assert response.status == 201, registered
    assert (await p.store.clients.get_client(registered["client_id"])).admin is False
    status, body, _ = await post(api.public, "/oauth2/token", {
        "grant_type": "client_credentials", "scope": "tokensrv:admin", "client_id": registered["client_id"],
        "client_secret": registered["client_secret"]})
    assert (status, body["error"]) == (400, "invalid_scope")


async def test_failed_authentications_are_limited_per_address_but_a_good_token_still_works(api: AdminAPI):
    limit = provider_of(api.public).settings.client_auth_max_failures
    for _ in range(limit):
        await refused(api, "not-a-token", 401, INVALID)
    status, body, response = await api.call("GET", "/admin/clients", token_value="not-a-token")
    assert (status, body["error"]) == (429, "slow_down") and int(response.headers["Retry-After"]) > 0
    status, body, _ = await api.call("GET", "/admin/clients")  # a good token is no guess: never locked out
    assert status == 200, body
    status, body, _ = await api.call("GET", "/admin/clients", token_value="not-a-token")
    assert (status, body["error"]) == (429, "slow_down")  # and the good one did not lift the lock


async def test_no_secret_in_errors_or_logs(api: AdminAPI, caplog):
    status, added, _ = await api.call("POST", "/admin/clients", {"client_id": "svc"})
    assert status == 201
    await api.call("POST", "/admin/clients/svc/secret", {"overlap": 60})
    await api.call("POST", "/admin/users", {"username": "bob", "password": "a much longer password"})
    await api.call("PUT", "/admin/users/bob/password", {"password": "short"})
    assert added["client_secret"] not in caplog.text and "a much longer password" not in caplog.text
    assert "short" not in caplog.text and api.bearer not in caplog.text


async def test_the_store_unreachable_fails_closed(make_client, settings, tmp_path):
    store = EmbeddedValkey(tmp_path / "valkey", port=free_port())
    store.start()
    try:
        async with aiohttp.ClientSession() as http:
            api = await start_admin_api(make_client, dataclasses.replace(settings, redis_url=store.url), http)
            store.stop()
            for method, path in (("GET", "/admin/clients"), ("GET", "/admin/users/alice")):
                status, body, _ = await asyncio.wait_for(api.call(method, path), 30)
                assert (status, body["error"]) == (503, "temporarily_unavailable"), path
    finally:
        store.stop()
