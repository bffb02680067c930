"""The claim rules document (custom scopes and claim mappings, tokensrv/claims.py) in Valkey: what
`tokensrv claims set` and `apply` write, and every server process follows (oauth/live_rules.py).

Keys (store/keyspace.py):
  claim-rules          JSON {"version": n, "document": {...} or null, "updated_at": epoch s}; no TTL
  claim-rules-changes  pub/sub channel: the new version, whenever the document changes

One key, so a change is one WATCHed write (Cluster-safe; of two operators at once neither is lost).
Clearing keeps the key with "document": null, so that the version only ever grows. A document equal
to the stored one is not written and not announced.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tokensrv.store import keyspace
from tokensrv.store.connection import Connection


@dataclass(frozen=True)
class StoredRules:
    """The stored document (None: cleared) and its version, which each change bumps."""
    version: int
    document: dict[str, Any] | None
    updated_at: int

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "document": self.document, "updated_at": self.updated_at}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StoredRules:
        return cls(int(raw["version"]), raw.get("document"), int(raw.get("updated_at", 0)))


class Unchanged(Exception):
    """The document asked for is the stored one: nothing to write (aborts the WATCHed write)."""


class ClaimRulesStore:
    """`store.claim_rules`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._conn = conn

    async def get_rules(self) -> StoredRules | None:
        """The stored document and its version; None if none was ever stored."""
        raw = await self.redis.get(keyspace.CLAIM_RULES)
        return StoredRules.from_json(json.loads(raw)) if raw else None

    async def put_rules(self, document: dict[str, Any] | None, now: int) -> StoredRules | None:
        """Store `document` (None: clear it) as the next version and announce it; None if it is
        the stored one already (then nothing is written or announced). The caller checks it."""
        await self.redis.set(keyspace.CLAIM_RULES, json.dumps(StoredRules(0, None, now).to_json()), nx=True)

        def change(stored: StoredRules) -> StoredRules:
            if stored.document == document:
                raise Unchanged
            return StoredRules(stored.version + 1, document, now)
        try:
            changed = await self._conn.update_json(keyspace.CLAIM_RULES, StoredRules.from_json, change)
        except Unchanged:
            return None
        if changed is not None:
            await self.redis.publish(keyspace.CLAIM_RULES_CHANGES, str(changed.version))
        return changed
