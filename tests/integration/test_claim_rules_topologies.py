"""The claim rules document on every store topology (single, Sentinel, Cluster): one key, written
with WATCH, and its announcement riding the client cache's one subscription (on Cluster a plain
connection to one node), after which a process following it reads the new document."""
from __future__ import annotations

import asyncio

import pytest

from tests.helpers.poll import eventually
from tokensrv.claims import NO_RULES
from tokensrv.oauth.live_rules import LiveRules
from tokensrv.store.cache import CachingStore
from tokensrv.store.redis import RedisStore
from tokensrv.verify import store_url

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)

RULES = {"scopes": {"department": {"department": {"attribute": "department"}}}}


async def test_a_change_reaches_a_follower_and_an_unchanged_one_is_not_written(
        topology: str, redis_url: str, redis) -> None:
    caching = CachingStore(store_url.connect(redis_url, decode_responses=True))
    rules = LiveRules(NO_RULES)
    caching.follow_claim_rules(rules.changed)
    caching.start_following()
    follower = asyncio.create_task(rules.follow(caching.claim_rules))
    try:
        assert await caching.client_cache.wait_live(10)
        writer = RedisStore(redis).claim_rules  # another process: only the announcement tells this one
        assert (await writer.put_rules(RULES, 0)).version == 1  # type: ignore[union-attr]
        await eventually(lambda: "department" in rules.current.scopes, "the document to reach the follower",
                         timeout=20)
        assert rules.effective.source == "store" and rules.effective.version == 1
        assert await writer.put_rules(RULES, 1) is None  # unchanged: not written
        assert (await writer.put_rules(None, 2)).version == 2  # type: ignore[union-attr]
        await eventually(lambda: rules.effective.source == "built-in", "the clearing to reach the follower",
                         timeout=20)
    finally:
        rules.stop()
        await follower
        await caching.stop_following()
        await caching.redis.aclose()


async def test_concurrent_changes_each_get_their_own_version(redis) -> None:
    """WATCH: of ten operators setting a document at once, each write is a version of its own (none
    is lost by reading the same version), and the last one written is the document."""
    store = RedisStore(redis).claim_rules
    documents = [{"scopes": {f"s{i}": {f"c{i}": {"attribute": "a"}}}} for i in range(10)]
    written = await asyncio.gather(*(store.put_rules(doc, 0) for doc in documents))
    versions = sorted(w.version for w in written if w is not None)
    assert versions == list(range(1, 11))
    last = max((w for w in written if w is not None), key=lambda w: w.version)
    assert (await store.get_rules()) == last
