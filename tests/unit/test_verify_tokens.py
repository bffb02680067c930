"""tokensrv.verify on hand-made tokens: what it accepts, and every hostile shape it must refuse."""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.clock import FakeClock
from tests.helpers.verify import (
    AUDIENCE,
    ISSUER,
    FunctionFetcher,
    Signer,
    b64,
    claims_for,
    make_verifier,
    segment,
)
from tokensrv.verify import (
    ExpiredToken,
    InvalidClaims,
    InvalidSignature,
    InvalidToken,
    MalformedToken,
    NotYetValid,
    TokenVerifier,
    UnknownKey,
)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("RS256")


@pytest.fixture(scope="module")
def ec_signer() -> Signer:
    return Signer("ES256")


@pytest.fixture
def fetcher(signer: Signer, ec_signer: Signer) -> FunctionFetcher:
    return FunctionFetcher(signer, ec_signer)


@pytest.fixture
async def verifier(fetcher: FunctionFetcher, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    async with make_verifier(fetcher, clock) as v:
        yield v


async def test_a_valid_token_gives_its_claims(verifier: TokenVerifier, signer: Signer, clock: FakeClock) -> None:
    claims = claims_for(clock())
    assert await verifier.verify(signer.sign(claims)) == claims


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
async def test_access_token_type_is_case_insensitive(verifier: TokenVerifier, signer: Signer, clock: FakeClock,
                                                     typ: str) -> None:
    assert (await verifier.verify(signer.sign(claims_for(clock()), typ=typ)))["sub"] == "u-1"


async def test_audience_may_be_a_list(verifier: TokenVerifier, signer: Signer, clock: FakeClock) -> None:
    token = signer.sign(claims_for(clock(), aud=["billing", AUDIENCE]))
    assert (await verifier.verify(token))["aud"] == ["billing", AUDIENCE]


async def test_other_allowed_algorithms_verify(fetcher: FunctionFetcher, ec_signer: Signer, clock: FakeClock) -> None:
    ed = Signer("EdDSA")
    fetcher.publish(ed)
    async with make_verifier(fetcher, clock, algorithms=("RS256", "ES256", "EdDSA")) as v:
        for key in (ec_signer, ed):
            assert (await v.verify(key.sign(claims_for(clock()))))["jti"] == "j-1"


@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), ("RS256", "HS512"), ()])
def test_the_allow_list_takes_only_public_key_algorithms(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        make_verifier(FunctionFetcher(), algorithms=algorithms)


# ---- hostile tokens: each builder gets (signer, ec_signer, now) and returns a token ----

def _hmac_token(signer: Signer, now: float, secret: bytes) -> str:
    signing_input = f"{segment(signer.header(alg='HS256'))}.{segment(claims_for(now))}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _pem(signer: Signer) -> bytes:
    return bytes(signer.key.public_key.public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo))


def _unsigned(signer: Signer, now: float, alg: str, signature: str = "") -> str:
    return f"{segment(signer.header(alg=alg))}.{segment(claims_for(now))}.{signature}"


def _raw_payload(signer: Signer, payload: bytes) -> str:
    return signer.sign(payload)


Builder = Callable[[Signer, Signer, float], str]
HOSTILE: dict[str, tuple[Builder, type[InvalidToken]]] = {
    # the algorithm: from the allow-list, never from the token
    "alg none": (lambda s, e, now: _unsigned(s, now, "none"), MalformedToken),
    "alg none, dummy signature": (lambda s, e, now: _unsigned(s, now, "none", "AAAA"), InvalidSignature),
    "alg None": (lambda s, e, now: _unsigned(s, now, "None", "AAAA"), InvalidSignature),
    "alg NONE": (lambda s, e, now: _unsigned(s, now, "NONE", "AAAA"), InvalidSignature),
    "alg nOnE": (lambda s, e, now: _unsigned(s, now, "nOnE", "AAAA"), InvalidSignature),
    "alg missing": (lambda s, e, now: s.sign(claims_for(now), alg=None), InvalidSignature),
    "alg as a list": (lambda s, e, now: s.sign(claims_for(now), alg=["RS256"]), InvalidSignature),
    "HS256 keyed with the public key PEM": (lambda s, e, now: _hmac_token(s, now, _pem(s)), InvalidSignature),
    "HS256 keyed with the public JWK": (
        lambda s, e, now: _hmac_token(s, now, json.dumps(s.public_jwk()).encode()), InvalidSignature),
    "HS256 keyed with the modulus": (
        lambda s, e, now: _hmac_token(s, now, s.public_jwk()["n"].encode()), InvalidSignature),
    "ES256 when only RS256 is allowed": (lambda s, e, now: e.sign(claims_for(now)), InvalidSignature),
    "signed by another key under our kid": (
        lambda s, e, now: Signer("RS256").sign(claims_for(now), kid=s.kid), InvalidSignature),
    "signature of another token": (
        lambda s, e, now: s.sign(claims_for(now, sub="admin")).rsplit(".", 1)[0] + "."
        + s.sign(claims_for(now)).rsplit(".", 1)[1], InvalidSignature),
    # headers that choose or carry a key, and extensions we do not understand
    "jku": (lambda s, e, now: s.sign(claims_for(now), jku="https://evil.example/jwks"), MalformedToken),
    "x5u": (lambda s, e, now: s.sign(claims_for(now), x5u="https://evil.example/cert"), MalformedToken),
    "jwk": (lambda s, e, now: s.sign(claims_for(now), jwk=s.public_jwk()), MalformedToken),
    "x5c": (lambda s, e, now: s.sign(claims_for(now), x5c=["MIIB"]), MalformedToken),
    "unknown crit": (lambda s, e, now: s.sign(claims_for(now), crit=["exp"], exp=1), MalformedToken),
    "crit b64": (lambda s, e, now: s.sign(claims_for(now), crit=["b64"], b64=False), MalformedToken),
    "no kid": (lambda s, e, now: s.sign(claims_for(now), kid=None), MalformedToken),
    "kid not a string": (lambda s, e, now: s.sign(claims_for(now), kid=7), MalformedToken),
    # RFC 9068 type
    "typ JWT": (lambda s, e, now: s.sign(claims_for(now), typ="JWT"), InvalidClaims),
    "no typ": (lambda s, e, now: s.sign(claims_for(now), typ=None), InvalidClaims),
    "typ with parameters": (lambda s, e, now: s.sign(claims_for(now), typ="at+jwt;v=1"), InvalidClaims),
    "typ not a string": (lambda s, e, now: s.sign(claims_for(now), typ=["at+jwt"]), InvalidClaims),
    # who it is for and when
    "wrong issuer": (lambda s, e, now: s.sign(claims_for(now, iss=ISSUER + "/")), InvalidClaims),
    "wrong audience": (lambda s, e, now: s.sign(claims_for(now, aud="billing")), InvalidClaims),
    "audience list without us": (lambda s, e, now: s.sign(claims_for(now, aud=["billing"])), InvalidClaims),
    "expired beyond the leeway": (lambda s, e, now: s.sign(claims_for(now - 931)), ExpiredToken),
    "not yet valid (nbf)": (lambda s, e, now: s.sign(claims_for(now, nbf=now + 31)), NotYetValid),
    "issued in the future": (lambda s, e, now: s.sign(claims_for(now + 31)), NotYetValid),
    # claims of the wrong type
    "exp a string": (lambda s, e, now: s.sign(claims_for(now, exp=str(int(now) + 900))), InvalidClaims),
    "exp a bool": (lambda s, e, now: s.sign(claims_for(now, exp=True)), InvalidClaims),
    "exp NaN": (lambda s, e, now: _raw_payload(s, json.dumps(claims_for(now)).replace(
        f'"exp": {int(now) + 900}', '"exp": NaN').encode()), MalformedToken),
    "exp Infinity": (lambda s, e, now: _raw_payload(s, json.dumps(claims_for(now)).replace(
        f'"exp": {int(now) + 900}', '"exp": 1e400').encode()), MalformedToken),  # beyond a double: as NaN
    "no exp": (lambda s, e, now: s.sign(claims_for(now, exp=None)), InvalidClaims),
    "no iat": (lambda s, e, now: s.sign(claims_for(now, iat=None)), InvalidClaims),
    "nbf a string": (lambda s, e, now: s.sign(claims_for(now, nbf="0")), InvalidClaims),
    "aud a number": (lambda s, e, now: s.sign(claims_for(now, aud=5)), InvalidClaims),
    "aud list with a number": (lambda s, e, now: s.sign(claims_for(now, aud=[AUDIENCE, 5])), InvalidClaims),
    "iss a list": (lambda s, e, now: s.sign(claims_for(now, iss=[ISSUER])), InvalidClaims),
    "sub a number": (lambda s, e, now: s.sign(claims_for(now, sub=1)), InvalidClaims),
    "no sub": (lambda s, e, now: s.sign(claims_for(now, sub=None)), InvalidClaims),
    "no jti": (lambda s, e, now: s.sign(claims_for(now, jti=None)), InvalidClaims),
    "no client_id": (lambda s, e, now: s.sign(claims_for(now, client_id=None)), InvalidClaims),
    "scope a list": (lambda s, e, now: s.sign(claims_for(now, scope=["orders:read"])), InvalidClaims),
    "sid a number": (lambda s, e, now: s.sign(claims_for(now, sid=3)), InvalidClaims),
    "roles a string": (lambda s, e, now: s.sign(claims_for(now, roles="admin")), InvalidClaims),
    "auth_time a string": (lambda s, e, now: s.sign(claims_for(now, auth_time="now")), InvalidClaims),
    # shape
    "payload not an object": (lambda s, e, now: s.sign(b"[1, 2]"), MalformedToken),
    "payload not UTF-8": (lambda s, e, now: s.sign(b'{"sub": "\xff"}'), MalformedToken),
    "duplicate claim": (lambda s, e, now: _raw_payload(s, json.dumps(claims_for(now))[:-1].encode()
                                                       + b', "sub": "admin"}'), MalformedToken),
    "header not JSON": (lambda s, e, now: "bm90IGpzb24." + s.sign(claims_for(now)).split(".", 1)[1], MalformedToken),
    "two segments": (lambda s, e, now: s.sign(claims_for(now)).rsplit(".", 1)[0], MalformedToken),
    "four segments": (lambda s, e, now: s.sign(claims_for(now)) + ".AAAA", MalformedToken),
    "padding": (lambda s, e, now: s.sign(claims_for(now)) + "==", MalformedToken),
    "standard base64 alphabet": (lambda s, e, now: s.sign(claims_for(now))[:-2] + "+/", MalformedToken),
    "white space": (lambda s, e, now: " " + s.sign(claims_for(now)), MalformedToken),
    "too large": (lambda s, e, now: s.sign(claims_for(now, pad="x" * 9000)), MalformedToken),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_tokens_are_refused(verifier: TokenVerifier, fetcher: FunctionFetcher, signer: Signer,
                                          ec_signer: Signer, clock: FakeClock, name: str) -> None:
    build, expected = HOSTILE[name]
    token = build(signer, ec_signer, clock())
    with pytest.raises(expected):
        await verifier.verify(token)
    assert fetcher.calls == [None], "a hostile token made the verifier fetch something"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_the_key_type_must_match_the_algorithm(fetcher: FunctionFetcher, signer: Signer, ec_signer: Signer,
                                                     clock: FakeClock, alg: str) -> None:
    other = ec_signer if alg == "RS256" else signer  # a key of the other type, named by its kid
    async with make_verifier(fetcher, clock, algorithms=("RS256", "ES256")) as v:
        token = other.sign(claims_for(clock()), alg=alg)
        with pytest.raises(InvalidSignature):
            await v.verify(token)


async def test_non_canonical_base64_is_refused(verifier: TokenVerifier, signer: Signer, clock: FakeClock) -> None:
    token = signer.sign(claims_for(clock()))
    head, payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(signature) % 4 == 2  # 256 bytes: the last character carries 4 unused bits
    twin = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]  # same bytes, other spelling
    with pytest.raises(MalformedToken):
        await verifier.verify(f"{head}.{payload}.{twin}")


async def test_leeway_tolerates_small_clock_skew(verifier: TokenVerifier, signer: Signer, clock: FakeClock) -> None:
    now = clock()
    assert await verifier.verify(signer.sign(claims_for(now - 925)))  # expired 25 s ago
    assert await verifier.verify(signer.sign(claims_for(now + 25, nbf=now + 25)))  # 25 s ahead


async def test_not_a_string_is_malformed(verifier: TokenVerifier) -> None:
    for value in (None, b"a.b.c", 42):
        with pytest.raises(MalformedToken):
            await verifier.verify(value)  # type: ignore[arg-type]


async def test_an_unknown_kid_is_refused_after_one_refetch(verifier: TokenVerifier, fetcher: FunctionFetcher,
                                                           clock: FakeClock) -> None:
    with pytest.raises(UnknownKey):
        await verifier.verify(Signer("RS256").sign(claims_for(clock())))
    assert len(fetcher.calls) == 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_change_to_a_valid_token_is_refused(verifier: TokenVerifier, signer: Signer, clock: FakeClock,
                                                      data: Any) -> None:
    token = signer.sign(claims_for(clock()))
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii"))
    mutated = token[:position] + replacement + token[position + 1:]
    if mutated == token:
        return
    with pytest.raises(InvalidToken):
        await verifier.verify(mutated)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.one_of(st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_-]{0,40}(\.[A-Za-z0-9_-]{0,40}){2}",
                                                             fullmatch=True)))
async def test_garbage_raises_only_invalid_token(verifier: TokenVerifier, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(garbage)
