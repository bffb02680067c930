"""RFC 8693 token exchange: delegation with `act` chains, narrowing only (scope, audience, exp),
the per-client audience policy, and the attacks: wider scope or audience, revoked, expired or
foreign subject tokens, actor tokens that are not ours or not the caller's, and logout or sign-out
of the subject stopping the exchanged token."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.exchange import AT, EXCHANGE, Parties
from tests.helpers.oauth import add_user, basic, claims_of, introspect, revoke
from tests.helpers.verify import Signer, b64, segment
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.own_tokens import sign

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

IDT = "urn:ietf:params:oauth:token-type:id_token"


@pytest.fixture
async def parties(client):
    p = Parties(client)
    await p.add("web", ("password", "refresh_token", "token_exchange"), ("orders",), audience="gateway",
                first_party=True)
    await p.add("gateway", ("client_credentials", "token_exchange"), ("orders", "https://billing.example/api"))
    await p.add("orders", ("client_credentials", EXCHANGE), ("billing",), audience="orders")
    await add_user(client)
    return p


async def test_an_exchanged_token_narrows_and_keeps_the_session(parties, clock):
    user = await parties.user_tokens()
    subject = claims_of(user["access_token"])
    clock.advance(100)
    status, body = await parties.exchange("gateway", user["access_token"], audience="orders", scope="orders:read")
    assert status == 200, body
    assert body["issued_token_type"] == AT and body["token_type"] == "Bearer"
    assert "refresh_token" not in body and body["scope"] == "orders:read"
    claims = claims_of(body["access_token"])
    assert (claims["sub"], claims["sid"], claims["auth_time"]) == (subject["sub"], subject["sid"], subject["auth_time"])
    assert (claims["aud"], claims["client_id"], claims["scope"]) == ("orders", "gateway", "orders:read")
    assert claims["exp"] == subject["exp"] and body["expires_in"] == subject["exp"] - claims["iat"]
    assert "act" not in claims
    described = await introspect(parties.client, _Caller("gateway", parties), body["access_token"])
    assert described["active"] is True and described["aud"] == "orders"


async def test_actor_tokens_make_a_nested_act_chain(parties):
    user = await parties.user_tokens()
    status, first = await parties.exchange("gateway", user["access_token"], audience="orders",
                                           actor_token=await parties.service_token("gateway"), actor_token_type=AT)
    assert status == 200, first
    assert claims_of(first["access_token"])["act"] == {"sub": "gateway"}
    # orders received that token (aud orders) and calls billing on the user's behalf
    status, second = await parties.exchange("orders", first["access_token"], audience="billing",
                                            actor_token=await parties.service_token("orders"), actor_token_type=AT)
    assert status == 200, second
    claims = claims_of(second["access_token"])
    assert claims["act"] == {"sub": "orders", "act": {"sub": "gateway"}}
    assert claims["sub"] == claims_of(user["access_token"])["sub"]
    described = await introspect(parties.client, _Caller("orders", parties), second["access_token"])
    assert described["act"] == claims["act"]


async def test_scope_and_audience_never_widen(parties):
    user = await parties.user_tokens(scope="orders:read")
    token = user["access_token"]
    status, body = await parties.exchange("gateway", token, audience="orders", scope="orders:read orders:write")
    assert (status, body["error"]) == (400, "invalid_scope")
    status, body = await parties.exchange("gateway", token, audience="billing")  # not in gateway's policy
    assert (status, body["error"]) == (400, "invalid_target")
    status, body = await parties.exchange("gateway", token, resource="https://billing.example/api")
    assert status == 200 and claims_of(body["access_token"])["aud"] == "https://billing.example/api"
    status, body = await parties.exchange("gateway", token, audience="orders", resource="https://billing.example/api")
    assert (status, body["error"]) == (400, "invalid_target")
    status, body = await parties.exchange("gateway", token)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await parties.exchange("gateway", token, audience="orders", requested_token_type=IDT)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_the_subject_token_must_be_meant_for_the_caller(parties):
    user = await parties.user_tokens()  # aud gateway, issued to web
    status, body = await parties.exchange("orders", user["access_token"], audience="billing")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_an_id_token_as_subject_hands_on_no_scope(parties):
    user = await parties.user_tokens()
    status, body = await parties.exchange("web", user["id_token"], IDT, audience="orders")
    assert status == 200, body
    claims = claims_of(body["access_token"])
    assert claims["scope"] == "" and claims["sub"] == claims_of(user["access_token"])["sub"]
    status, body = await parties.exchange("web", user["id_token"], IDT, audience="orders", scope="orders:read")
    assert (status, body["error"]) == (400, "invalid_scope")
    status, body = await parties.exchange("gateway", user["id_token"], IDT, audience="orders")  # aud is web
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await parties.exchange("web", user["id_token"], AT, audience="orders")  # wrong type
    assert (status, body["error"]) == (400, "invalid_request")


async def test_revoked_expired_and_foreign_subject_tokens(parties, clock):
    user = await parties.user_tokens()
    p = provider_of(parties.client)
    await revoke(parties.client, _Caller("web", parties), user["access_token"])
    status, body = await parties.exchange("gateway", user["access_token"], audience="orders")
    assert (status, body["error"]) == (400, "invalid_request")

    other_issuer = {**claims_of((await parties.user_tokens())["access_token"]), "iss": "https://evil.example"}
    status, body = await parties.exchange("gateway", sign(p, other_issuer, "at+jwt"), audience="orders")
    assert (status, body["error"]) == (400, "invalid_request")
    forged = _signed_by_another_key(claims_of((await parties.user_tokens())["access_token"]))
    status, body = await parties.exchange("gateway", forged, audience="orders")
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await parties.exchange("gateway", "not.a.token", audience="orders")
    assert (status, body["error"]) == (400, "invalid_request")

    fresh = await parties.user_tokens()
    clock.advance(p.settings.access_token_ttl + 1)
    status, body = await parties.exchange("gateway", fresh["access_token"], audience="orders")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_actor_tokens_that_are_not_ours_or_not_the_callers(parties):
    user = await parties.user_tokens()
    forged_actor = _signed_by_another_key(claims_of(await parties.service_token("gateway")))
    status, body = await parties.exchange("gateway", user["access_token"], audience="orders",
                                          actor_token=forged_actor, actor_token_type=AT)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await parties.exchange("gateway", user["access_token"], audience="orders",
                                          actor_token=await parties.service_token("orders"), actor_token_type=AT)
    assert (status, body["error"]) == (400, "invalid_request")  # orders' token presented by gateway
    status, body = await parties.exchange("gateway", user["access_token"], audience="orders",
                                          actor_token=await parties.service_token("gateway"))
    assert (status, body["error"]) == (400, "invalid_request")  # actor_token_type is required


async def test_only_registered_confidential_clients_exchange(parties, client):
    user = await parties.user_tokens()
    await parties.add("plain", ("client_credentials",))
    status, body = await parties.exchange("plain", user["access_token"], audience="orders")
    assert (status, body["error"]) == (400, "unauthorized_client")
    with pytest.raises(admin.AdminError, match="public client"):
        await admin.add_client(provider_of(client), "pub", ClientMetadata(
            public=True, grant_types=("token_exchange",), exchange_audiences=("orders",)))
    with pytest.raises(admin.AdminError, match="at least one exchange_audiences"):
        await parties.add("nopolicy", ("token_exchange",))


async def test_logout_of_the_subjects_session_stops_the_exchanged_token(parties):
    user = await parties.user_tokens()
    _, exchanged = await parties.exchange("gateway", user["access_token"], audience="orders")
    caller = _Caller("gateway", parties)
    assert (await introspect(parties.client, caller, exchanged["access_token"]))["active"] is True
    resp = await parties.client.get("/oauth2/logout", params={"id_token_hint": user["id_token"]},
                                    allow_redirects=False)
    assert resp.status == 200
    assert await introspect(parties.client, caller, exchanged["access_token"]) == {"active": False}
    status, body = await parties.exchange("gateway", user["access_token"], audience="orders")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_signing_the_user_out_everywhere_stops_the_exchanged_token(parties, clock):
    user = await parties.user_tokens()
    clock.advance(1)
    _, exchanged = await parties.exchange("gateway", user["access_token"], audience="orders")
    clock.advance(1)
    await admin.revoke_everywhere(provider_of(parties.client), "alice")
    assert await introspect(parties.client, _Caller("gateway", parties), exchanged["access_token"]) == {"active": False}


class _Caller:
    """A registered client as oauth_helpers' introspect/revoke want it."""

    def __init__(self, client_id, parties):
        self.basic = basic(client_id, parties.secrets[client_id])


def _signed_by_another_key(claims):
    """The same claims, signed by a key that is not ours (with a kid of its own)."""
    signer = Signer()
    header = {"alg": "RS256", "kid": signer.kid, "typ": "at+jwt"}
    signing_input = f"{segment(header)}.{segment(claims)}".encode()
    return signing_input.decode() + "." + b64(signer.raw_signature(signing_input))


async def test_the_subject_tokens_amr_and_acr_carry_over(parties):
    """A browser sign-in's token says how the user signed in; the exchanged one says the same."""
    user = await parties.user_tokens()
    claims = {**claims_of(user["access_token"]), "amr": ["pwd", "otp", "mfa"], "acr": "urn:tokensrv:acr:mfa"}
    subject = sign(provider_of(parties.client), claims, "at+jwt")
    status, body = await parties.exchange("gateway", subject, audience="orders", scope="orders:read")
    assert status == 200, body
    exchanged = claims_of(body["access_token"])
    assert (exchanged["amr"], exchanged["acr"]) == (["pwd", "otp", "mfa"], "urn:tokensrv:acr:mfa")
