"""The verifier's key cache: Cache-Control, ETag, the rate-limited single-flight refetch on an
unknown kid, and which JWKS keys it is willing to use."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers.clock import FakeClock
from tests.helpers.verify import FunctionFetcher, Signer, b64, claims_for, make_verifier
from tokensrv.verify import (
    InvalidSignature,
    TokenVerifier,
    UnknownKey,
    VerifierUnavailable,
)
from tokensrv.verify.jwks import MIN_REFRESH, KeyCache, max_age_of
from tokensrv.verify.jws import import_jwks

RSA_ONLY = frozenset({"RS256"})


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("RS256")


@pytest.fixture(scope="module")
def newcomer() -> Signer:
    return Signer("RS256")


@pytest.fixture
def fetcher(signer: Signer) -> FunctionFetcher:
    return FunctionFetcher(signer)


@pytest.fixture
async def verifier(fetcher: FunctionFetcher, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    async with make_verifier(fetcher, clock) as v:
        yield v


async def test_concurrent_verifications_of_a_new_kid_share_one_fetch(
        verifier: TokenVerifier, fetcher: FunctionFetcher, newcomer: Signer, clock: FakeClock) -> None:
    fetcher.publish(newcomer)
    fetcher.gate, fetcher.entered = asyncio.Event(), asyncio.Event()
    token = newcomer.sign(claims_for(clock()))
    pending = [asyncio.create_task(verifier.verify(token)) for _ in range(50)]
    await asyncio.wait_for(fetcher.entered.wait(), 5)
    fetcher.gate.set()
    results = await asyncio.gather(*pending)
    assert all(claims["sub"] == "u-1" for claims in results)
    assert fetcher.calls == [None, '"v1"'], "one refetch, conditional on the ETag we held"


async def test_forged_kids_cause_at_most_one_refetch_per_interval(
        verifier: TokenVerifier, fetcher: FunctionFetcher, clock: FakeClock) -> None:
    forger = Signer("RS256")
    tokens = [forger.sign(claims_for(clock()), kid=f"forged-{i}") for i in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, UnknownKey) for r in results)
    assert len(fetcher.calls) == 2
    clock.advance(4)
    for token in tokens:
        with pytest.raises(UnknownKey):
            await verifier.verify(token)
    assert len(fetcher.calls) == 2, "refetched within the interval"
    clock.advance(1.5)
    with pytest.raises(UnknownKey):
        await verifier.verify(tokens[0])
    assert len(fetcher.calls) == 3


async def test_a_new_key_verifies_once_the_interval_has_passed(
        verifier: TokenVerifier, fetcher: FunctionFetcher, newcomer: Signer, clock: FakeClock) -> None:
    token = newcomer.sign(claims_for(clock()))
    with pytest.raises(UnknownKey):
        await verifier.verify(token)  # not published yet: this refetch finds nothing
    fetcher.publish(newcomer)
    with pytest.raises(UnknownKey):
        await verifier.verify(token)  # rate-limited
    clock.advance(5)
    assert (await verifier.verify(token))["jti"] == "j-1"


async def test_an_unchanged_jwks_is_not_downloaded_again(
        verifier: TokenVerifier, fetcher: FunctionFetcher, signer: Signer, clock: FakeClock) -> None:
    assert await verifier.keys.refresh()
    assert fetcher.calls == [None, '"v1"']
    assert await verifier.verify(signer.sign(claims_for(clock())))  # 304: the keys are kept


async def test_when_the_issuer_is_down_known_keys_keep_working(
        verifier: TokenVerifier, fetcher: FunctionFetcher, signer: Signer, newcomer: Signer,
        clock: FakeClock) -> None:
    fetcher.fail = True
    assert not await verifier.keys.refresh()
    assert await verifier.verify(signer.sign(claims_for(clock())))
    with pytest.raises(VerifierUnavailable):
        await verifier.verify(newcomer.sign(claims_for(clock())))


async def test_a_verifier_started_while_the_issuer_is_down_recovers(signer: Signer, clock: FakeClock) -> None:
    fetcher = FunctionFetcher(signer)
    fetcher.fail = True
    async with make_verifier(fetcher, clock) as verifier:
        assert not verifier.ready
        with pytest.raises(VerifierUnavailable):
            await verifier.verify(signer.sign(claims_for(clock())))
        fetcher.fail = False
        clock.advance(5)
        assert await verifier.verify(signer.sign(claims_for(clock())))
        assert verifier.ready


@pytest.mark.parametrize("header, seconds", [
    ("public, max-age=600", 600.0), ("max-age=0", 0.0), ('max-age="30", public', 30.0),
    ("no-store", 0.0), ("public, no-cache", 0.0), ("s-maxage=5", None), ("public", None), (None, None),
])
def test_cache_control_max_age(header: str | None, seconds: float | None) -> None:
    assert max_age_of(header) == seconds


def test_background_refresh_comes_before_expiry_and_backs_off_on_failure() -> None:
    cache = KeyCache(FunctionFetcher(), RSA_ONLY, FakeClock())
    cache.max_age = 600
    assert cache.next_refresh_in(True, 0) == 480
    assert [cache.next_refresh_in(False, n) for n in (1, 2, 3, 10)] == [2, 4, 8, 60]
    cache.max_age = 0
    assert cache.next_refresh_in(True, 0) == MIN_REFRESH


def test_only_usable_signing_keys_are_imported(signer: Signer) -> None:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    weak = {"kty": "RSA", "n": b64(numbers.n.to_bytes(128, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}
    documents = [
        {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "hmac", "alg": "HS256"},
        signer.public_jwk(kid="enc", use="enc"),
        signer.public_jwk(kid="mislabelled", alg="ES256"),
        {**weak, "kid": "weak"},
        signer.public_jwk(kid=None),
        signer.public_jwk(kid="broken", n="AAAA"),
        "not a key",
        signer.public_jwk(),
        {**signer.public_jwk(), "n": Signer("RS256").public_jwk()["n"]},  # same kid again: ignored
    ]
    keys = import_jwks({"keys": documents}, RSA_ONLY)
    assert list(keys) == [signer.kid]
    assert keys[signer.kid].algorithms == RSA_ONLY
    assert import_jwks({"keys": "nope"}, RSA_ONLY) == {}


async def test_a_jwk_alg_restricts_its_key(signer: Signer, clock: FakeClock) -> None:
    fetcher = FunctionFetcher()
    fetcher.keys = [signer.public_jwk(alg="PS256")]
    async with make_verifier(fetcher, clock, algorithms=("RS256", "PS256")) as verifier:
        with pytest.raises(InvalidSignature):
            await verifier.verify(signer.sign(claims_for(clock())))  # RS256 by a PS256-only key


async def test_excluded_kids_are_never_admitted(signer: Signer, newcomer: Signer, clock: FakeClock) -> None:
    cache = KeyCache(FunctionFetcher(signer, newcomer), RSA_ONLY, clock, excluded=lambda kid: kid == signer.kid)
    assert await cache.refresh()
    assert cache.get(signer.kid) is None and cache.get(newcomer.kid) is not None
