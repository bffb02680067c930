"""DPoP (RFC 9449) at tokensrv's token endpoint, authorization endpoint, introspection and
userinfo, driven by a DPoP client built on joserfc in the tests (tests/helpers/dpop.py)."""
from __future__ import annotations

import dataclasses

import pytest

from tests.helpers import sso as sso_helpers
from tests.helpers.app import provider_of
from tests.helpers.dpop import DPoPKey, unsigned_proof
from tests.helpers.oauth import add_client, claims_of, introspect, post
from tokensrv.oauth.dpop import NONCE_PERIOD

ISSUER = "http://127.0.0.1:8080"  # the settings fixture's issuer; the test server listens elsewhere
TOKEN_URL = ISSUER + "/oauth2/token"
USERINFO_URL = ISSUER + "/oauth2/userinfo"


async def dpop_token(client, app, key_or_proof, **params):
    if isinstance(key_or_proof, str):
        proof = key_or_proof
    else:
        proof = key_or_proof.proof("POST", TOKEN_URL, client_clock(client))
    data = {"grant_type": "client_credentials", **params}
    return await post(client, "/oauth2/token", data, {**app.basic, "DPoP": proof})


def client_clock(client):
    return provider_of(client).clock()


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
async def test_a_proof_binds_the_access_token_to_its_key(client, alg):
    svc, rs = await add_client(client, "svc"), await add_client(client, "rs")
    key = DPoPKey(alg)
    status, body, headers = await dpop_token(client, svc, key)
    assert status == 200, body
    assert body["token_type"] == "DPoP" and "DPoP-Nonce" not in headers  # nonces are off by default
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    answer = await introspect(client, rs, body["access_token"])
    assert answer["active"] is True and answer["token_type"] == "DPoP" and answer["cnf"] == {"jkt": key.jkt}


async def test_without_a_proof_the_token_is_a_bearer_token(client):
    svc, rs = await add_client(client, "svc"), await add_client(client, "rs")
    status, body, _ = await post(client, "/oauth2/token", {"grant_type": "client_credentials"}, svc.basic)
    assert status == 200 and body["token_type"] == "Bearer" and "cnf" not in claims_of(body["access_token"])
    assert (await introspect(client, rs, body["access_token"]))["token_type"] == "Bearer"


async def test_discovery_names_the_proof_algorithms(client):
    doc = await (await client.get("/.well-known/openid-configuration")).json()
    assert doc["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


async def test_htu_is_compared_normalised_and_without_query(client):
    svc, key = await add_client(client, "svc"), DPoPKey()
    for htu in ("HTTP://127.0.0.1:8080/oauth2/token?x=1#f", "http://127.0.0.1:8080/oauth2/%74oken"):
        status, body, _ = await dpop_token(client, svc, key.proof("POST", htu, client_clock(client)))
        assert status == 200, (htu, body)


def attacks(key: DPoPKey, now: float) -> dict[str, str]:
    other = DPoPKey()
    good_header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}
    claims = {"jti": "j1", "htm": "POST", "htu": TOKEN_URL, "iat": int(now)}
    private_jwk = {**key.public_jwk(), "d": key.key.as_dict(private=True)["d"]}
    return {
        "another URL": key.proof("POST", ISSUER + "/oauth2/revoke", now),
        "another host": key.proof("POST", "http://127.0.0.1:8081/oauth2/token", now),
        "another method": key.proof("GET", TOKEN_URL, now),
        "stale iat": key.proof("POST", TOKEN_URL, now - 61),
        "iat in the future": key.proof("POST", TOKEN_URL, now + 61),
        "alg none": unsigned_proof({**good_header, "alg": "none"}, claims),
        "symmetric alg": unsigned_proof({**good_header, "alg": "HS256"}, claims, b"x" * 32),
        "private key in the jwk": key.proof("POST", TOKEN_URL, now, header={"jwk": private_jwk}),
        "no jwk": key.proof("POST", TOKEN_URL, now, header={"jwk": None}),
        "another key's jwk": key.proof("POST", TOKEN_URL, now, header={"jwk": other.public_jwk()}),
        "typ JWT": key.proof("POST", TOKEN_URL, now, header={"typ": "JWT"}),
        "no jti": key.proof("POST", TOKEN_URL, now, claims={"jti": None}),
        "no htu": key.proof("POST", TOKEN_URL, now, claims={"htu": None}),
        "iat a string": key.proof("POST", TOKEN_URL, now, claims={"iat": str(int(now))}),
        "not a JWS": "not-a-proof",
    }


@pytest.mark.parametrize("attack", list(attacks(DPoPKey(), 0)))
async def test_a_bad_proof_is_invalid_dpop_proof(client, attack):
    svc = await add_client(client, "svc")
    proof = attacks(DPoPKey(), client_clock(client))[attack]
    status, body, _ = await dpop_token(client, svc, proof)
    assert (status, body["error"]) == (400, "invalid_dpop_proof"), attack
    assert proof not in str(body)


async def test_a_replayed_proof_is_refused(client):
    svc, key = await add_client(client, "svc"), DPoPKey()
    proof = key.proof("POST", TOKEN_URL, client_clock(client))
    assert (await dpop_token(client, svc, proof))[0] == 200
    status, body, _ = await dpop_token(client, svc, proof)
    assert (status, body["error"]) == (400, "invalid_dpop_proof")


async def test_a_replay_is_seen_by_every_instance(client, make_client, settings):
    other = await make_client(settings)  # a second server on the same store
    svc, key = await add_client(client, "svc"), DPoPKey()
    proof = key.proof("POST", TOKEN_URL, client_clock(client))
    assert (await dpop_token(client, svc, proof))[0] == 200
    assert (await dpop_token(other, svc, proof))[1]["error"] == "invalid_dpop_proof"


async def test_two_dpop_headers_are_refused(client):
    svc, key = await add_client(client, "svc"), DPoPKey()
    now = client_clock(client)
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             headers=[*svc.basic.items(), ("DPoP", key.proof("POST", TOKEN_URL, now)),
                                      ("DPoP", key.proof("POST", TOKEN_URL, now))])
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_dpop_proof"


async def test_a_client_registered_dpop_bound_needs_a_proof(client):
    created = await add_client(client, "svc")
    p = provider_of(client)
    record = await p.store.clients.get_client("svc")
    await p.store.clients.remove_client("svc")
    await p.store.clients.add_client(dataclasses.replace(record, dpop_bound_access_tokens=True))
    status, body, _ = await post(client, "/oauth2/token", {"grant_type": "client_credentials"}, created.basic)
    assert (status, body["error"]) == (400, "invalid_dpop_proof")
    status, body, _ = await dpop_token(client, created, DPoPKey())
    assert status == 200 and body["token_type"] == "DPoP"


# ---- server nonces (TOKENSRV_DPOP_NONCE=on) ----

@pytest.fixture
async def nonce_client(make_client, settings):
    return await make_client(dataclasses.replace(settings, dpop_nonce="on"))


async def test_with_nonces_on_a_proof_without_one_gets_use_dpop_nonce(nonce_client):
    client, svc, key = nonce_client, await add_client(nonce_client, "svc"), DPoPKey()
    status, body, headers = await dpop_token(client, svc, key)
    assert (status, body["error"]) == (400, "use_dpop_nonce")
    nonce = headers["DPoP-Nonce"]
    proof = key.proof("POST", TOKEN_URL, client_clock(client), nonce=nonce)
    status, body, headers = await dpop_token(client, svc, proof)
    assert status == 200 and body["token_type"] == "DPoP", body
    assert headers["DPoP-Nonce"] == nonce  # still this period's
    wrong_nonce = key.proof("POST", TOKEN_URL, client_clock(client), nonce="x" + nonce)
    status, body, _ = await dpop_token(client, svc, wrong_nonce)
    assert (status, body["error"]) == (400, "use_dpop_nonce")


async def test_a_nonce_lasts_its_period_and_the_next_then_rotates(nonce_client, clock):
    client, svc, key = nonce_client, await add_client(nonce_client, "svc"), DPoPKey()
    nonce = (await dpop_token(client, svc, key))[2]["DPoP-Nonce"]
    clock.advance(NONCE_PERIOD)
    status, _, headers = await dpop_token(client, svc, key.proof("POST", TOKEN_URL, clock(), nonce=nonce))
    assert status == 200 and headers["DPoP-Nonce"] != nonce  # accepted, and the next one offered
    clock.advance(NONCE_PERIOD)
    status, body, headers = await dpop_token(client, svc, key.proof("POST", TOKEN_URL, clock(), nonce=nonce))
    assert (status, body["error"]) == (400, "use_dpop_nonce") and headers["DPoP-Nonce"] != nonce


async def test_every_instance_accepts_the_nonce_another_gave(nonce_client, make_client, settings):
    other = await make_client(dataclasses.replace(settings, dpop_nonce="on"))
    svc, key = await add_client(nonce_client, "svc"), DPoPKey()
    nonce = (await dpop_token(nonce_client, svc, key))[2]["DPoP-Nonce"]
    status, body, _ = await dpop_token(other, svc, key.proof("POST", TOKEN_URL, client_clock(other), nonce=nonce))
    assert status == 200, body


# ---- dpop_jkt at the authorization endpoint (RFC 9449 §10) ----

async def redeem_with(client, flow, code, proof):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.app.redirect_uri,
            "code_verifier": flow.verifier, **flow.app.form()}
    headers = {**flow.app.auth(), **({"DPoP": proof} if proof else {})}
    resp = await client.post("/oauth2/token", data=data, headers=headers)
    return resp.status, await resp.json()


@pytest.mark.parametrize("presented", ["same key", "another key", "no proof"])
async def test_a_code_requested_with_dpop_jkt_needs_that_key(client, presented):
    app = await sso_helpers.add_app(client)
    await sso_helpers.add_user(client)
    key = DPoPKey()
    flow, answer = await sso_helpers.sign_in(client, app, dpop_jkt=key.jkt)
    signer = {"same key": key, "another key": DPoPKey(), "no proof": None}[presented]
    proof = signer.proof("POST", TOKEN_URL, client_clock(client)) if signer else None
    status, body = await redeem_with(client, flow, answer["code"], proof)
    if presented == "same key":
        assert status == 200 and body["token_type"] == "DPoP", body
        assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    else:
        assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_malformed_dpop_jkt_is_refused(client):
    app = await sso_helpers.add_app(client)
    _, resp = await sso_helpers.begin(client, app, dpop_jkt="short")
    assert sso_helpers.query_of(resp.headers["Location"])["error"] == "invalid_request"


# ---- userinfo: our own resource server ----

async def user_tokens(client, key):
    app = await sso_helpers.add_app(client)
    await sso_helpers.add_user(client)
    flow, answer = await sso_helpers.sign_in(client, app, scope="openid profile")
    status, body = await redeem_with(client, flow, answer["code"],
                                     key.proof("POST", TOKEN_URL, client_clock(client)))
    assert status == 200, body
    return body


async def userinfo(client, token, proof=None, scheme="DPoP", method="GET"):
    headers = {"Authorization": f"{scheme} {token}", **({"DPoP": proof} if proof else {})}
    resp = await client.request(method, "/oauth2/userinfo", headers=headers)
    return resp.status, resp.headers.get("WWW-Authenticate", ""), await resp.json()


async def test_userinfo_takes_a_dpop_bound_token_with_its_proof(client):
    key = DPoPKey()
    token = (await user_tokens(client, key))["access_token"]
    for method in ("GET", "POST"):
        proof = key.proof(method, USERINFO_URL, client_clock(client), access_token=token)
        status, _, body = await userinfo(client, token, proof, method=method)
        assert status == 200 and body["preferred_username"] == "alice", body


async def test_userinfo_refuses_a_dpop_bound_token_as_bearer(client):
    token = (await user_tokens(client, DPoPKey()))["access_token"]
    status, challenge, body = await userinfo(client, token, scheme="Bearer")
    assert (status, body["error"]) == (401, "invalid_token")
    assert challenge.startswith('DPoP realm="tokensrv", error="invalid_token"')


@pytest.mark.parametrize("attack", ["replayed", "another key", "no ath", "another token's ath",
                                    "another method", "no proof"])
async def test_userinfo_refuses_a_bad_proof(client, attack):
    key = DPoPKey()
    token = (await user_tokens(client, key))["access_token"]
    now = client_clock(client)
    good = key.proof("GET", USERINFO_URL, now, access_token=token)
    if attack == "replayed":
        assert (await userinfo(client, token, good))[0] == 200
    proof = {"replayed": good,
             "another key": DPoPKey().proof("GET", USERINFO_URL, now, access_token=token),
             "no ath": key.proof("GET", USERINFO_URL, now),
             "another token's ath": key.proof("GET", USERINFO_URL, now, access_token=token[:-2] + "xx"),
             "another method": key.proof("POST", USERINFO_URL, now, access_token=token),
             "no proof": None}[attack]
    status, challenge, body = await userinfo(client, token, proof)
    expected = "invalid_token" if attack == "another key" else "invalid_dpop_proof"
    assert (status, body["error"]) == (401, expected)
    assert challenge.startswith(f'DPoP realm="tokensrv", error="{expected}"')


async def test_userinfo_refuses_an_unbound_token_with_the_dpop_scheme(client):
    app = await sso_helpers.add_app(client)
    await sso_helpers.add_user(client)
    token = (await sso_helpers.tokens_for(client, app, scope="openid"))["access_token"]
    key = DPoPKey()
    status, _, body = await userinfo(client, token, key.proof("GET", USERINFO_URL, client_clock(client),
                                                              access_token=token))
    assert (status, body["error"]) == (401, "invalid_token")
