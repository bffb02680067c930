"""A client that requires mfa gets no tokens of a sign-in without it from the token endpoint's
grants that have no second factor of their own: the password grant is refused to it, and a token
exchange into it needs a subject token whose sign-in used mfa."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.exchange import Parties
from tests.helpers.oauth import PASSWORD, add_user
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata


@pytest.fixture
async def parties(client):
    await add_user(client)
    return Parties(client)


async def _strict(parties: Parties, client_id: str, grant_types: tuple[str, ...]) -> None:
    created = await admin.add_client(provider_of(parties.client), client_id, ClientMetadata(
        grant_types=grant_types, scope=("openid", "orders:read"), first_party=True, require_mfa=True,
        exchange_audiences=("orders",) if "token_exchange" in grant_types else ()))
    parties.secrets[client_id] = created["client_secret"]


async def test_the_password_grant_is_refused_to_a_client_requiring_mfa(parties):
    await _strict(parties, "strict", ("password",))
    status, body, _ = await parties.token("strict", grant_type="password", username="alice", password=PASSWORD,
                                          scope="openid")
    assert status == 400 and body["error"] == "unauthorized_client", body


async def test_a_token_exchange_into_a_client_requiring_mfa_needs_an_mfa_subject(parties):
    await _strict(parties, "strict", ("token_exchange",))
    await parties.add("app", ("password",), audience="strict", first_party=True)  # its tokens are for strict
    status, user, _ = await parties.token("app", grant_type="password", username="alice", password=PASSWORD,
                                          scope="openid orders:read")
    assert status == 200, user  # a sign-in with the password alone: amr pwd
    status, body = await parties.exchange("strict", user["access_token"], audience="orders", scope="orders:read")
    assert status == 400 and body["error"] == "invalid_grant", body
    assert "second factor" in body["error_description"]
