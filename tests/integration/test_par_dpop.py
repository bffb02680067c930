"""DPoP at the pushed authorization request endpoint (RFC 9449 §10.1): a proof sent with a pushed
request is checked as at the token endpoint, its key binds the authorization code as `dpop_jkt`
does at /oauth2/authorize, and a `dpop_jkt` naming another key is refused."""
from __future__ import annotations

import pytest

from tests.helpers import sso as sso_helpers
from tests.helpers.app import provider_of
from tests.helpers.dpop import DPoPKey
from tests.helpers.oauth import claims_of
from tests.helpers.par import authorize_pushed, log_in_at, push

ISSUER = "http://127.0.0.1:8080"  # the settings fixture's issuer
PAR_URL = ISSUER + "/oauth2/par"
TOKEN_URL = ISSUER + "/oauth2/token"


def now_of(client) -> float:
    return provider_of(client).now()


@pytest.fixture
async def rp(client):
    await sso_helpers.add_user(client)
    return await sso_helpers.add_app(client, "rp", public=False)


async def push_with(client, app, proof, **params):
    return await push(client, app, headers={**app.auth(), "DPoP": proof}, **params)


async def code_pushed_with(client, app, key):
    status, body, flow, _ = await push_with(client, app, key.proof("POST", PAR_URL, now_of(client)))
    assert status == 201, body
    answer = await log_in_at(client, await authorize_pushed(client, app.client_id, body["request_uri"]))
    return flow, answer["code"]


async def redeem_with(client, flow, code, proof):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.app.redirect_uri,
            "code_verifier": flow.verifier, **flow.app.form()}
    headers = {**flow.app.auth(), **({"DPoP": proof} if proof else {})}
    resp = await client.post("/oauth2/token", data=data, headers=headers)
    return resp.status, await resp.json()


def bad_proofs(key: DPoPKey, now: float) -> dict[str, str]:
    return {
        "another URL": key.proof("POST", TOKEN_URL, now),
        "another method": key.proof("GET", PAR_URL, now),
        "stale iat": key.proof("POST", PAR_URL, now - 61),
        "not a JWT": "not-a-proof",
    }


@pytest.mark.parametrize("attack", list(bad_proofs(DPoPKey(), 0)))
async def test_a_bad_proof_at_par_is_refused(client, rp, attack):
    status, body, _, _ = await push_with(client, rp, bad_proofs(DPoPKey(), now_of(client))[attack])
    assert (status, body["error"]) == (400, "invalid_dpop_proof"), body


async def test_a_proof_replayed_at_par_is_refused(client, rp):
    proof = DPoPKey().proof("POST", PAR_URL, now_of(client))
    assert (await push_with(client, rp, proof))[0] == 201
    status, body, _, _ = await push_with(client, rp, proof)
    assert (status, body["error"]) == (400, "invalid_dpop_proof")


@pytest.mark.parametrize("presented", ["same key", "another key", "no proof"])
async def test_the_key_proven_at_par_binds_the_code(client, rp, presented):
    key = DPoPKey()
    flow, code = await code_pushed_with(client, rp, key)
    signer = {"same key": key, "another key": DPoPKey(), "no proof": None}[presented]
    status, body = await redeem_with(client, flow, code, signer.proof("POST", TOKEN_URL, now_of(client))
                                     if signer else None)
    if presented == "same key":
        assert status == 200 and body["token_type"] == "DPoP", body
        assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    else:
        assert (status, body["error"]) == (400, "invalid_grant"), body


async def test_a_dpop_jkt_of_another_key_than_the_proofs_is_refused(client, rp):
    key = DPoPKey()
    status, body, _, _ = await push_with(client, rp, key.proof("POST", PAR_URL, now_of(client)),
                                         dpop_jkt=DPoPKey().jkt)
    assert (status, body["error"]) == (400, "invalid_request"), body
    status, body, _, _ = await push_with(client, rp, key.proof("POST", PAR_URL, now_of(client)),
                                         dpop_jkt=key.jkt)
    assert status == 201, body  # the same key named twice is fine


async def test_a_pushed_dpop_jkt_without_a_proof_binds_the_code(client, rp):
    """§10: dpop_jkt alone works at PAR as at the authorization endpoint."""
    key = DPoPKey()
    status, body, flow, _ = await push(client, rp, dpop_jkt=key.jkt)
    assert status == 201, body
    answer = await log_in_at(client, await authorize_pushed(client, "rp", body["request_uri"]))
    status, body = await redeem_with(client, flow, answer["code"], DPoPKey().proof("POST", TOKEN_URL, now_of(client)))
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_with_nonces_on_par_asks_for_the_nonce_and_offers_the_next(make_client, settings):
    client = await make_client(settings, dpop_nonce="on")
    await sso_helpers.add_user(client)
    rp = await sso_helpers.add_app(client, "rp", public=False)
    key = DPoPKey()
    status, body, _, headers = await push_with(client, rp, key.proof("POST", PAR_URL, now_of(client)))
    assert (status, body["error"]) == (400, "use_dpop_nonce") and headers["DPoP-Nonce"]
    status, body, _, headers = await push_with(client, rp, key.proof("POST", PAR_URL, now_of(client),
                                                                     nonce=headers["DPoP-Nonce"]))
    assert status == 201 and headers["DPoP-Nonce"], body


async def test_a_client_without_dpop_pushes_as_before(client, rp):
    status, body, flow, headers = await push(client, rp)
    assert status == 201 and "DPoP-Nonce" not in headers, body
    answer = await log_in_at(client, await authorize_pushed(client, "rp", body["request_uri"]))
    status, body = await redeem_with(client, flow, answer["code"], None)
    assert status == 200 and body["token_type"] == "Bearer", body
