"""The revocation mirror against a real Valkey, fed by the server's own store code (RedisStore)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.helpers.clock import FakeClock
from tests.helpers.ports import free_port
from tests.helpers.verify import AUDIENCE, FunctionFetcher, Signer, claims_for, gauge, make_verifier
from tokensrv.store import Revocation, keyspace
from tokensrv.store.redis import RedisStore
from tokensrv.verify import FeedEntry, RevokedToken, VerifierUnavailable
from tokensrv.verify.metrics import VerifierMetrics
from tokensrv.verify.mirror import RevocationMirror

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


@pytest.fixture
def store(redis: Redis) -> RedisStore:
    return RedisStore(redis)


def mirror_for(redis_url: str, clock: FakeClock) -> RevocationMirror:
    return RevocationMirror(redis_url, VerifierMetrics(CollectorRegistry(), AUDIENCE), clock)


@pytest.fixture
async def mirror(redis_url: str, clock: FakeClock, store: RedisStore) -> AsyncIterator[RevocationMirror]:
    m = mirror_for(redis_url, clock)
    await m.start()
    yield m
    await m.close()


def resyncs(mirror: RevocationMirror) -> float:
    return mirror._metrics.mirror_resyncs._value.get()  # type: ignore[attr-defined]


async def revoke(store: RedisStore, clock: FakeClock, kind: str, value: str, ttl: int = 900) -> int:
    now = int(clock())
    await store.denylist.revoke([Revocation(kind, value, now + ttl, now)], now)  # type: ignore[arg-type]
    return now + ttl


async def test_start_loads_what_was_revoked_before(redis_url: str, clock: FakeClock, store: RedisStore) -> None:
    until = await revoke(store, clock, "jti", "j-old")
    await revoke(store, clock, "sid", "s-old")
    await revoke(store, clock, "sub", "u-old")
    m = mirror_for(redis_url, clock)
    await m.start()
    try:
        assert m.synced and m.connected
        assert m.state.jti == {"j-old": until}  # the expiry is Valkey's, read with the key
        assert "s-old" in m.state.sid and m.state.sub["u-old"][0] == int(clock())
    finally:
        await m.close()


async def test_revocations_arrive_through_the_feed(mirror: RevocationMirror, store: RedisStore,
                                                   clock: FakeClock) -> None:
    seen: list[FeedEntry] = []
    mirror.on_revocation(seen.append)
    for kind, value in (("jti", "j1"), ("sid", "s1"), ("sub", "u1"), ("kid", "k1"), ("family", "f1")):
        await revoke(store, clock, kind, value)
    await mirror.wait_for(lambda: len(seen) == 5)
    assert [(e.kind, e.value) for e in seen] == [("jti", "j1"), ("sid", "s1"), ("sub", "u1"), ("kid", "k1"),
                                                ("family", "f1")]
    now = clock()
    assert mirror.state.revoked("j1", None, "x", now, now) == "jti"
    assert mirror.state.revoked("j2", "s1", "x", now, now) == "sid"
    assert mirror.state.revoked("j2", None, "u1", now, now) == "sub"
    assert mirror.state.kid_revoked("k1", now)
    assert mirror.last_id == seen[-1].id


async def test_nothing_revoked_during_the_load_is_missed(redis_url: str, clock: FakeClock, store: RedisStore) -> None:
    """A revocation lands after the deny-list was scanned, before following starts: the feed,
    followed from the id recorded before the scan, brings it."""
    await revoke(store, clock, "jti", "before")

    class RevokedMidLoad(RevocationMirror):
        async def _load_keys(self, keys: list[str]) -> None:
            if keys:
                await revoke(store, clock, "jti", "during")
            await super()._load_keys(keys)

    m = RevokedMidLoad(redis_url, VerifierMetrics(CollectorRegistry(), AUDIENCE), clock)
    await m.start()
    try:
        assert "during" not in m.state.jti  # not in the scan ...
        await m.wait_for(lambda: "during" in m.state.jti)  # ... but in the feed
        assert "before" in m.state.jti
    finally:
        await m.close()


async def test_a_restarted_follower_resumes_from_its_last_entry(mirror: RevocationMirror, store: RedisStore,
                                                                clock: FakeClock) -> None:
    await revoke(store, clock, "jti", "j1")
    await mirror.wait_for(lambda: "j1" in mirror.state.jti)
    await mirror.close()
    await revoke(store, clock, "jti", "j2")  # while it was away, still in the stream
    await mirror.start()
    await mirror.wait_for(lambda: "j2" in mirror.state.jti)
    assert resyncs(mirror) == 1  # resumed, not reloaded


async def test_a_follower_whose_resume_point_was_trimmed_reloads(mirror: RevocationMirror, store: RedisStore,
                                                                 redis: Redis, clock: FakeClock) -> None:
    await mirror.close()
    await revoke(store, clock, "jti", "gone-from-the-feed")
    await redis.xtrim(keyspace.FEED, maxlen=0, approximate=False)
    await mirror.start()
    assert resyncs(mirror) == 2
    assert "gone-from-the-feed" in mirror.state.jti  # from the deny-list itself


async def test_a_malformed_feed_entry_is_skipped(mirror: RevocationMirror, store: RedisStore, redis: Redis,
                                                 clock: FakeClock) -> None:
    await redis.xadd(keyspace.FEED, {"k": "jti", "v": "no-until"})
    await revoke(store, clock, "jti", "j-after")
    await mirror.wait_for(lambda: "j-after" in mirror.state.jti)
    assert "no-until" not in mirror.state.jti


# ---- the verifier's policy while its mirror is disconnected ----

@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("RS256")


def nowhere() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


async def test_by_default_a_disconnected_verifier_keeps_verifying_but_is_not_ready(signer: Signer,
                                                                                   clock: FakeClock) -> None:
    async with make_verifier(FunctionFetcher(signer), clock, redis_url=nowhere()) as verifier:
        assert not verifier.ready and verifier.keys.loaded
        assert gauge(verifier, "mirror_connected") == 0
        assert await verifier.verify(signer.sign(claims_for(clock())))


async def test_a_verifier_may_refuse_when_disconnected_too_long(signer: Signer, clock: FakeClock) -> None:
    async with make_verifier(FunctionFetcher(signer), clock, redis_url=nowhere(), max_disconnected=10) as v:
        token = signer.sign(claims_for(clock()))
        assert await v.verify(token)  # within the allowance
        clock.advance(11)
        with pytest.raises(VerifierUnavailable):
            await v.verify(token)


async def test_a_verifier_refuses_revoked_tokens(signer: Signer, clock: FakeClock, store: RedisStore,
                                                 redis_url: str) -> None:
    async with make_verifier(FunctionFetcher(signer), clock, redis_url=redis_url) as verifier:
        token = signer.sign(claims_for(clock(), jti="j-9"))
        assert await verifier.verify(token)
        await revoke(store, clock, "jti", "j-9")
        assert verifier.mirror is not None
        await verifier.mirror.wait_for(lambda: "j-9" in verifier.mirror.state.jti)  # type: ignore[union-attr]
        with pytest.raises(RevokedToken):
            await verifier.verify(token)
        clock.advance(900 + 29)  # expired, but within the leeway: still revoked
        with pytest.raises(RevokedToken):
            await verifier.verify(token)

