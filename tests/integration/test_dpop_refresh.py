"""DPoP-bound refresh tokens (RFC 9449 §5), on every store topology: a public client's family is
bound to the key of the proof it was issued with; a refresh with another key, or with none, is
refused by the rotation script before it writes anything, so the token stays usable. A
confidential client's refresh tokens are not bound (its authentication already binds them)."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.dpop import DPoPKey
from tests.helpers.oauth import PASSWORD, add_client, add_user, claims_of, introspect, post
from tokensrv.oauth.own_tokens import parse_refresh_token
from tokensrv.store import keyspace

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

TOKEN_URL = "http://127.0.0.1:8080/oauth2/token"  # the settings fixture's issuer


async def token(client, client_id, key, auth=None, **params):
    """A token request of a public client (client_id in the form) or with `auth` headers."""
    headers = dict(auth or {})
    if key is not None:
        headers["DPoP"] = key.proof("POST", TOKEN_URL, provider_of(client).clock())
    data = {**({} if auth else {"client_id": client_id}), **params}
    return await post(client, "/oauth2/token", data, headers)


async def bound_login(client, key):
    await add_client(client, "pub", public=True, first_party=True, scopes=("read",),
                     grant_types=("password", "refresh_token"))
    await add_user(client)
    status, body, _ = await token(client, "pub", key, grant_type="password", username="alice", password=PASSWORD)
    assert status == 200 and body["token_type"] == "DPoP", body
    return body


async def test_a_public_clients_refresh_token_is_bound_and_refreshes_with_its_key(client):
    key = DPoPKey()
    first = await bound_login(client, key)
    status, second, _ = await token(client, "pub", key, grant_type="refresh_token",
                                    refresh_token=first["refresh_token"])
    assert status == 200 and second["token_type"] == "DPoP", second
    assert claims_of(second["access_token"])["cnf"] == {"jkt": key.jkt}
    rs = await add_client(client, "rs")
    assert (await introspect(client, rs, second["access_token"]))["cnf"] == {"jkt": key.jkt}


@pytest.mark.parametrize("presented", ["another key", "no proof"])
async def test_a_refresh_with_another_key_or_none_is_refused_and_consumes_nothing(client, redis, presented):
    key = DPoPKey()
    first = await bound_login(client, key)
    family = keyspace.family(parse_refresh_token(first["refresh_token"]))
    async def state():  # position 0 is a raw digest, which the decoding client cannot read
        return await redis.llen(family), await redis.lrange(family, 1, -1), await redis.expiretime(family)
    before = await state()
    status, body, _ = await token(client, "pub", DPoPKey() if presented == "another key" else None,
                                  grant_type="refresh_token", refresh_token=first["refresh_token"])
    expected = "invalid_grant" if presented == "another key" else "invalid_dpop_proof"
    assert (status, body["error"]) == (400, expected)
    assert await state() == before  # nothing written: not rotated, not revoked
    status, body, _ = await token(client, "pub", key, grant_type="refresh_token",
                                  refresh_token=first["refresh_token"])
    assert status == 200, body  # the same token, with its key, still refreshes (no reuse detected)


async def test_a_stolen_old_token_without_the_key_cannot_end_the_family(client):
    key = DPoPKey()
    first = await bound_login(client, key)
    status, second, _ = await token(client, "pub", key, grant_type="refresh_token",
                                    refresh_token=first["refresh_token"])
    assert status == 200
    status, body, _ = await token(client, "pub", DPoPKey(), grant_type="refresh_token",
                                  refresh_token=first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body, _ = await token(client, "pub", key, grant_type="refresh_token",
                                  refresh_token=second["refresh_token"])
    assert status == 200, body


async def test_a_confidential_clients_refresh_token_is_not_bound(client):
    app = await add_client(client, "app", first_party=True, scopes=("read",),
                           grant_types=("password", "refresh_token"))
    await add_user(client)
    status, first, _ = await token(client, "app", DPoPKey(), app.basic, grant_type="password",
                                   username="alice", password=PASSWORD)
    assert status == 200 and first["token_type"] == "DPoP"
    other = DPoPKey()
    status, second, _ = await token(client, "app", other, app.basic, grant_type="refresh_token",
                                    refresh_token=first["refresh_token"])
    assert status == 200 and claims_of(second["access_token"])["cnf"] == {"jkt": other.jkt}
    status, third, _ = await token(client, "app", None, app.basic, grant_type="refresh_token",
                                   refresh_token=second["refresh_token"])
    assert status == 200 and third["token_type"] == "Bearer"
