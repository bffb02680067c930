"""Several verifiers in one process, built with the default arguments (so all in prometheus-client's
global registry): concurrently, one after another, with and without the revocation mirror (real
Valkey). Counters carry the audience, and verifiers of one audience add up; the state gauges carry
the audience and the verifier's serial, one sample per live verifier, gone once it is closed."""
from __future__ import annotations

import asyncio
import gc
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.helpers.clock import FakeClock
from tests.helpers.ports import free_port
from tests.helpers.verify import (
    ISSUER,
    FunctionFetcher,
    Samples,
    Signer,
    claims_for,
    gauge,
    sample,
    scrape,
    wait_for_revocation,
)
from tokensrv.store import Revocation
from tokensrv.store.redis import RedisStore
from tokensrv.verify import InvalidClaims, TokenVerifier

STATE_GAUGES = ("jwks_keys", "mirror_connected", "mirror_lag_seconds", "mirror_entries")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("RS256")


@pytest.fixture(params=[False, True], ids=["keys-only", "with-mirror"])
def options(request: pytest.FixtureRequest, redis: Redis, redis_url: str) -> dict[str, Any]:
    """With the mirror, the verifiers follow the (emptied) store's revocation feed."""
    return {"redis_url": redis_url} if request.param else {}


def unique(audience: str) -> str:
    """The global registry lives as long as the test session: each test counts its own audiences."""
    return f"{audience}-{uuid.uuid4().hex[:8]}"


def verifier(audience: str, signer: Signer, clock: Any, **options: Any) -> TokenVerifier:
    return TokenVerifier(ISSUER, audience, fetcher=FunctionFetcher(signer), clock=clock, **options)


async def started(audience: str, signer: Signer, clock: Any, **options: Any) -> TokenVerifier:
    built = verifier(audience, signer, clock, **options)
    await built.start()
    return built


async def verify_valid(v: TokenVerifier, signer: Signer, clock: Any, times: int) -> None:
    for _ in range(times):
        assert await v.verify(signer.sign(claims_for(clock(), aud=v.audience)))


def gauges_of(samples: Samples, *serials: str) -> list[tuple[str, frozenset[tuple[str, str]]]]:
    return [key for key in samples
            if key[0].removeprefix("tokensrv_verifier_") in STATE_GAUGES and
            any(("verifier", serial) in key[1] for serial in serials)]


async def test_verifiers_built_concurrently_count_and_report_each_their_own(
        options: dict[str, Any], signer: Signer, clock: FakeClock) -> None:
    orders, billing = unique("orders"), unique("billing")
    audiences = [orders, orders, billing, orders, billing]
    verifiers = await asyncio.gather(*(started(a, signer, clock, **options) for a in audiences))
    try:
        for times, v in enumerate(verifiers, 1):
            await verify_valid(v, signer, clock, times)
            with pytest.raises(InvalidClaims):
                await v.verify(signer.sign(claims_for(clock(), aud="elsewhere")))
        samples = scrape()
        assert sample(samples, "verifications_total", audience=orders, result="valid") == 1 + 2 + 4
        assert sample(samples, "verifications_total", audience=orders, result="invalid") == 3
        assert sample(samples, "verifications_total", audience=billing, result="valid") == 3 + 5
        assert sample(samples, "verifications_total", audience=billing, result="invalid") == 2
        assert sample(samples, "jwks_fetches_total", audience=orders, result="ok") == 3
        assert len({v.metrics.serial for v in verifiers}) == len(verifiers)
        for v in verifiers:
            labels = {"audience": v.audience, "verifier": v.metrics.serial}
            assert sample(samples, "jwks_keys", **labels) == 1
            if options:
                assert sample(samples, "mirror_connected", **labels) == 1
                assert sample(samples, "mirror_entries", **labels) == 0
            else:
                assert sample(samples, "mirror_connected", **labels) is None  # no mirror, no series
        if options:
            assert sample(samples, "mirror_resyncs_total", audience=orders) == 3
    finally:
        await asyncio.gather(*(v.close() for v in verifiers))
    assert gauges_of(scrape(), *(v.metrics.serial for v in verifiers)) == []


async def test_verifiers_built_one_after_another_add_up_and_leave_no_gauges(
        options: dict[str, Any], signer: Signer, clock: FakeClock) -> None:
    audience = unique("orders")
    serials = []
    for times in (1, 2, 3):
        async with verifier(audience, signer, clock, **options) as v:
            serials.append(v.metrics.serial)
            await verify_valid(v, signer, clock, times)
            assert gauge(v, "jwks_keys") == 1
            assert gauges_of(scrape(), *serials[:-1]) == []  # the previous one, closed, is gone
    samples = scrape()
    assert sample(samples, "verifications_total", audience=audience, result="valid") == 1 + 2 + 3
    assert sample(samples, "jwks_fetches_total", audience=audience, result="ok") == 3
    assert gauges_of(samples, *serials) == []


async def test_each_mirror_reports_its_own_state(redis: Redis, redis_url: str, signer: Signer) -> None:
    """Two verifiers of one audience, whose clocks differ, and one whose store is unreachable: no
    gauge of one overwrites another's."""
    audience = unique("orders")
    ahead, further = FakeClock(), FakeClock()
    ahead.advance(100)
    further.advance(200)
    first = await started(audience, signer, ahead, redis_url=redis_url)
    second = await started(audience, signer, further, redis_url=redis_url)
    cut_off = await started(audience, signer, FakeClock(), redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        now = int(ahead())
        await RedisStore(redis).denylist.revoke([Revocation("jti", "j-1", now + 900, now),
                                        Revocation("sid", "s-1", now + 900, now)], now)
        for v in (first, second):
            await wait_for_revocation(v, "sid", "s-1")
        assert first.mirror is not None and second.mirror is not None
        added = int(first.mirror.last_id.partition("-")[0]) / 1000  # when the store added the entries
        assert first.mirror.last_id == second.mirror.last_id
        assert gauge(first, "mirror_lag_seconds") == pytest.approx(ahead() - added)
        assert gauge(second, "mirror_lag_seconds") == pytest.approx(further() - added)
        assert gauge(first, "mirror_entries") == gauge(second, "mirror_entries") == 2
        assert gauge(first, "mirror_connected") == gauge(second, "mirror_connected") == 1
        assert gauge(cut_off, "mirror_connected") == 0
        assert gauge(cut_off, "mirror_entries") == 0
        samples = scrape()
        assert sample(samples, "mirror_events_total", audience=audience, kind="jti") == 2  # one per mirror
        assert sample(samples, "mirror_events_total", audience=audience, kind="sid") == 2
    finally:
        for v in (first, second, cut_off):
            await v.close()


def test_a_verifier_dropped_unclosed_leaves_no_gauges(signer: Signer, clock: FakeClock) -> None:
    dropped = verifier(unique("orders"), signer, clock)
    serial = dropped.metrics.serial
    assert gauge(dropped, "jwks_keys") == 0  # reported from construction: no keys yet
    del dropped
    gc.collect()
    assert gauges_of(scrape(), serial) == []


async def test_a_verifier_given_a_registry_reports_there_only(signer: Signer, clock: FakeClock) -> None:
    registry, audience = CollectorRegistry(), unique("orders")
    async with verifier(audience, signer, clock, registry=registry) as v:
        await verify_valid(v, signer, clock, 2)
        assert sample(scrape(registry), "verifications_total", audience=audience, result="valid") == 2
        assert gauge(v, "jwks_keys", registry) == 1
        assert [key for key in scrape() if ("audience", audience) in key[1]] == []
