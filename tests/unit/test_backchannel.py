"""Back-channel logout, pure parts: the backchannel_logout_uri rule, what a receiver's answer
means, the retry delays, the client record, and tokensrv.verify's logout token checks against
forged tokens (hand-made with tests/helpers/verify.py's keys)."""
from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers.verify import AUDIENCE, ISSUER, FunctionFetcher, Signer, make_verifier, segment
from tokensrv.oauth.backchannel import EVENT, Outcome, outcome_of, retry_delay
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import RegistrationError, check_backchannel_logout_uri, new_client
from tokensrv.store import Client
from tokensrv.store.backchannel import LogoutJob
from tokensrv.verify import ExpiredToken, InvalidClaims, InvalidSignature, InvalidToken, MalformedToken

# ---- registration ----

@pytest.mark.parametrize("uri", [
    "https://rp.example/backchannel", "https://rp.example:8443/bcl?tenant=a",
    "http://127.0.0.1:9000/bcl", "http://localhost/bcl", "http://[::1]:9000/bcl"])
def test_good_backchannel_logout_uris_are_accepted(uri):
    assert check_backchannel_logout_uri(uri) == uri


@pytest.mark.parametrize("uri", [
    "http://rp.example/bcl",  # http off loopback: the token would cross the network in clear
    "https://rp.example/bcl#frag", "https://user:pw@rp.example/bcl", "https://@rp.example/bcl",
    "/bcl", "rp.example/bcl", "https://", "javascript:alert(1)", "data:text/html,x", "file:///etc/passwd",
    "ftp://rp.example/bcl", "https://rp.example:99999/bcl", "https://rp.example/b cl",
    "https://rp.example/\nbcl", "https://rp.example/" + "a" * 3000, "http://127.0.0.1.evil.example/bcl"])
def test_hostile_backchannel_logout_uris_are_refused_with_one_line(uri):
    with pytest.raises(RegistrationError) as refused:
        check_backchannel_logout_uri(uri)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 400


def test_new_client_checks_the_uri_and_keeps_it():
    client, _ = new_client("rp", ClientMetadata(public=True, redirect_uris=["http://127.0.0.1/cb"],
                           backchannel_logout_uri="https://rp.example/bcl"))
    assert client.backchannel_logout_uri == "https://rp.example/bcl"
    assert client.backchannel_logout_session_required is True  # the spec's default
    with pytest.raises(RegistrationError):
        new_client("rp", ClientMetadata(public=True, redirect_uris=["http://127.0.0.1/cb"],
                   backchannel_logout_uri="http://rp.example/bcl"))


def test_the_record_leaves_the_new_fields_out_unless_set():
    plain = Client("c", None)
    assert "backchannel_logout_uri" not in plain.to_json()
    assert "backchannel_logout_session_required" not in plain.to_json()
    registered = Client("c", None, backchannel_logout_uri="https://rp.example/bcl",
                        backchannel_logout_session_required=False)
    assert Client.from_json(registered.to_json()) == registered
    assert Client.from_json(plain.to_json()) == plain


# ---- delivery decisions ----

@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.DELIVERED), (204, Outcome.DELIVERED),
    (400, Outcome.REFUSED), (401, Outcome.REFUSED), (404, Outcome.REFUSED), (302, Outcome.REFUSED),
    (201, Outcome.REFUSED),
    (500, Outcome.RETRY), (502, Outcome.RETRY), (503, Outcome.RETRY), (408, Outcome.RETRY),
    (429, Outcome.RETRY), (None, Outcome.RETRY)])
def test_what_an_answer_means(status, outcome):
    assert outcome_of(status) is outcome


def test_retry_delays_double_and_are_capped():
    assert [retry_delay(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert retry_delay(30, 2.0) == 300.0


def test_jobs_read_back_and_unreadable_ones_are_none():
    job = LogoutJob("rp", "sub-1", "sid-1", 2)
    assert LogoutJob.from_json(job.to_json()) == job
    for raw in ("", "{", "[]", '{"c": 1, "s": "x", "i": "y", "a": 0}', '{"c": "rp"}'):
        assert LogoutJob.from_json(raw) is None


# ---- tokensrv.verify: logout tokens, and forgeries of them ----

RP = "rp-a"


def logout_claims(now: float, **changes: Any) -> dict[str, Any]:
    claims = {"iss": ISSUER, "aud": RP, "iat": int(now), "exp": int(now) + 120, "jti": "lt-1",
              "sub": "u-1", "sid": "s-1", "events": {EVENT: {}}, **changes}
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def verifier(signer):
    return make_verifier(FunctionFetcher(signer))


async def check(verifier, token: str, **options: Any) -> dict[str, Any]:
    await verifier.start()
    try:
        return await verifier.verify_logout_token(token, audience=RP, **options)
    finally:
        await verifier.close()


async def test_a_logout_token_is_accepted_once(signer, verifier):
    token = signer.sign(logout_claims(time.time()), typ="logout+jwt")
    await verifier.start()
    try:
        claims = await verifier.verify_logout_token(token, audience=RP)
        assert claims["sid"] == "s-1"
        with pytest.raises(InvalidClaims):
            await verifier.verify_logout_token(token, audience=RP)
        assert (await verifier.verify_logout_token(token, audience=RP, refuse_replay=False))["jti"] == "lt-1"
    finally:
        await verifier.close()


async def test_sub_or_sid_alone_is_enough(signer, verifier):
    await verifier.start()
    try:
        for i, changes in enumerate(({"sid": None}, {"sub": None})):
            claims = logout_claims(time.time(), jti=f"j-{i}", **changes)
            await verifier.verify_logout_token(signer.sign(claims, typ="logout+jwt"), audience=RP)
    finally:
        await verifier.close()


def unsigned(claims: dict[str, Any], signer: Signer, alg: str) -> str:
    return f"{segment({'alg': alg, 'kid': signer.kid, 'typ': 'logout+jwt'})}.{segment(claims)}."


@pytest.mark.parametrize(("forge", "error"), [
    ("wrong key", InvalidSignature),
    ("alg none", InvalidToken),  # no signature segment: malformed before the alg is even read
    ("HS256 with the public key", InvalidSignature),
    ("nonce", InvalidClaims),
    ("no events", InvalidClaims),
    ("another event", InvalidClaims),
    ("events not an object", InvalidClaims),
    ("wrong aud", InvalidClaims),
    ("wrong iss", InvalidClaims),
    ("neither sub nor sid", InvalidClaims),
    ("no jti", InvalidClaims),
    ("expired", ExpiredToken),
    ("issued long ago", ExpiredToken),
    ("access token", InvalidClaims),
    ("id token", InvalidClaims),
    ("no typ", InvalidClaims),
    ("garbage", MalformedToken),
])
async def test_forged_logout_tokens_are_refused(signer, verifier, forge, error):
    now = time.time()
    good = logout_claims(now)
    tokens = {
        "wrong key": lambda: Signer().sign(good, typ="logout+jwt"),
        "alg none": lambda: unsigned(good, signer, "none"),
        "HS256 with the public key": lambda: unsigned(good, signer, "HS256") + "c2ln",
        "nonce": lambda: signer.sign(logout_claims(now, nonce="n"), typ="logout+jwt"),
        "no events": lambda: signer.sign(logout_claims(now, events=None), typ="logout+jwt"),
        "another event": lambda: signer.sign(logout_claims(now, events={"urn:x": {}}), typ="logout+jwt"),
        "events not an object": lambda: signer.sign(logout_claims(now, events=[EVENT]), typ="logout+jwt"),
        "wrong aud": lambda: signer.sign(logout_claims(now, aud="rp-b"), typ="logout+jwt"),
        "wrong iss": lambda: signer.sign(logout_claims(now, iss="https://evil.example"), typ="logout+jwt"),
        "neither sub nor sid": lambda: signer.sign(logout_claims(now, sub=None, sid=None), typ="logout+jwt"),
        "no jti": lambda: signer.sign(logout_claims(now, jti=None), typ="logout+jwt"),
        "expired": lambda: signer.sign(logout_claims(now, iat=int(now) - 400, exp=int(now) - 200), typ="logout+jwt"),
        "issued long ago": lambda: signer.sign(logout_claims(now, iat=int(now) - 3600, exp=int(now) + 60),
                                               typ="logout+jwt"),
        # an access token for the RP, events and all, but typed as one: not a logout token
        "access token": lambda: signer.sign({**good, "client_id": RP, "scope": "openid"}, typ="at+jwt"),
        "id token": lambda: signer.sign({**logout_claims(now, events=None), "nonce": "n", "auth_time": int(now)},
                                        typ="JWT"),
        "no typ": lambda: signer.sign(good, typ=None),
        "garbage": lambda: "not.a.token",
    }
    with pytest.raises(error):
        await check(verifier, tokens[forge]())


async def test_the_audience_defaults_to_the_verifiers(signer):
    verifier = make_verifier(FunctionFetcher(signer))
    token = signer.sign(logout_claims(time.time(), aud=AUDIENCE), typ="logout+jwt")
    await verifier.start()
    try:
        assert (await verifier.verify_logout_token(token))["aud"] == AUDIENCE
        with pytest.raises(InvalidToken):
            await verifier.verify_logout_token(signer.sign(logout_claims(time.time(), jti="j-2"),
                                                           typ="logout+jwt"))  # aud rp-a
    finally:
        await verifier.close()
