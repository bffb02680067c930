"""Upgrading a store an earlier release wrote: its deny-list (untagged key names then) is
converted when the new release starts, and everything else it wrote is still honoured."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from tests.helpers.app import provider_of
from tests.helpers.oauth import add_app, add_client, add_user, claims_of, introspect, login, refresh
from tests.helpers.verify import AUDIENCE
from tokensrv.store import keyspace
from tokensrv.verify.metrics import VerifierMetrics
from tokensrv.verify.mirror import RevocationMirror


async def test_an_earlier_releases_store_is_honoured_after_the_upgrade(make_client, settings, redis, clock,
                                                                       redis_url):
    first = await make_client(settings)
    app, rs = await add_app(first), await add_client(first, "rs")
    await add_user(first)
    issued = await login(first, app)
    revoked_jti = claims_of(issued["access_token"])["jti"]
    # what the earlier release left behind: its deny-list names, and no layout record
    await redis.delete(keyspace.LAYOUT)
    now = int(clock())
    await redis.set(keyspace.LEGACY_DENY_PREFIX + "jti:" + revoked_jti, "1", exat=now + 600)
    await redis.set(keyspace.LEGACY_DENY_PREFIX + "sub:old-user", str(now - 5), exat=now + 900)
    await redis.set(keyspace.LEGACY_DENY_PREFIX + "sub:newer-user", str(now - 50), exat=now + 900)
    await redis.set(keyspace.deny("sub", "newer-user"), str(now), exat=now + 900)  # this release's, newer

    upgraded = await make_client(settings)  # the new release starts on that store
    assert not await redis.exists(keyspace.LEGACY_DENY_PREFIX + "jti:" + revoked_jti,
                                  keyspace.LEGACY_DENY_PREFIX + "sub:old-user")
    assert await redis.expiretime(keyspace.deny("jti", revoked_jti)) == now + 600  # value and expiry kept
    assert await provider_of(upgraded).store.denylist.denied("", "", "old-user") == (False, False, now - 5)
    assert await redis.get(keyspace.deny("sub", "newer-user")) == str(now)  # the newer entry won
    assert (await introspect(upgraded, rs, issued["access_token"]))["active"] is False

    status, refreshed, _ = await refresh(upgraded, app, issued["refresh_token"])  # families, clients, users
    assert status == 200 and (await introspect(upgraded, rs, refreshed["access_token"]))["active"] is True
    assert await login(upgraded, app)

    mirror = RevocationMirror(redis_url, VerifierMetrics(CollectorRegistry(), AUDIENCE), clock)
    await mirror.start()
    try:
        assert revoked_jti in mirror.state.jti and mirror.state.sub["old-user"][0] == now - 5
    finally:
        await mirror.close()


async def test_the_conversion_runs_once_per_store(redis, make_client, settings):
    await make_client(settings)
    assert await redis.hget(keyspace.LAYOUT, "deny-list") == "tagged"
    await redis.set(keyspace.LEGACY_DENY_PREFIX + "jti:written-by-an-old-instance-later", "1", ex=60)
    assert await provider_of(await make_client(settings)).store.upgrade_layout() == 0  # recorded: no scan
    assert await redis.exists(keyspace.LEGACY_DENY_PREFIX + "jti:written-by-an-old-instance-later")
