"""Conversions of what earlier releases wrote, kept apart so that each can be deleted once no store
in that layout is left:
- the deny-list, untagged then (LEGACY_DENY_PREFIX<kind>:<value>): converted once per store when
  a server starts (upgrade_layout, recorded in keyspace.LAYOUT);
- a refresh family as a hash: rewritten by the first script that touches it (lua/family_upgrade.lua,
  composed into the family scripts by store/scripts.py).
"""
from __future__ import annotations

import logging

from tokensrv.store import keyspace
from tokensrv.verify.store_url import StoreClient

log = logging.getLogger("tokensrv.store")


async def upgrade_layout(redis: StoreClient) -> int:
    """Convert, once per store, what an earlier release wrote under names this one does not read:
    the deny-list. Each entry keeps its value and expiry; one this release wrote meanwhile is newer
    and is kept. LAYOUT records the conversion, so later starts skip the scan. Answers how many
    entries were converted."""
    if await redis.hget(keyspace.LAYOUT, "deny-list"):
        return 0
    converted = 0
    async for old in redis.scan_iter(match=keyspace.LEGACY_DENY_PREFIX + "*", count=1000):
        if old.startswith(keyspace.DENY_PREFIX):
            continue
        value, expires = await redis.get(old), await redis.expiretime(old)
        if value is not None and expires != -2:  # else it expired meanwhile
            await redis.set(keyspace.DENY_PREFIX + old[len(keyspace.LEGACY_DENY_PREFIX):], value, nx=True,
                            exat=expires if expires > 0 else None)
            converted += 1
        await redis.delete(old)
    await redis.hset(keyspace.LAYOUT, "deny-list", "tagged")
    if converted:
        log.info("converted %d deny-list entries to the slot-tagged layout", converted)
    return converted
