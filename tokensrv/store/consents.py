"""Consents in Valkey: which clients a user allowed, for which scopes, and when (the consent
page, oauth/browser/consent.py).

Keys (store/keyspace.py):
  consents:<sub>   hash: client_id -> JSON {"scopes": [...], "granted": epoch s, "since_ms": epoch ms,
                   "not_before_ms": epoch ms}; no TTL
Every write touches the one key (Cluster-safe), read, changed and written under WATCH (`_update`):
of a grant and a withdrawal at once, neither is lost (a withdrawal in between never brings the
scopes back). A grant adds to what was allowed before (the union of the scopes); `since_ms` is
when the consent began (a grant after none). A withdrawal leaves a mark with no scopes: its
`not_before_ms` is when it was withdrawn, and what the client got before then is dead (the
refresh grant checks its families against it; oauth/consent_checks.py).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis.exceptions import WatchError

from tokensrv.store import keyspace
from tokensrv.store.connection import Connection


@dataclass(frozen=True)
class Consent:
    """What a user allowed a client: the scopes, and when they were last added to. No scopes: the
    mark a withdrawal leaves (nothing allowed; `not_before_ms`: when it was withdrawn)."""
    client_id: str
    scopes: tuple[str, ...]
    granted: int
    since_ms: int = 0  # when this consent began (0: before it was recorded)
    not_before_ms: int = 0  # the last withdrawal: what was issued before it does not count

    @property
    def began_ms(self) -> int:
        """When it began (a record from before `since_ms` was kept: when it was last added to)."""
        return self.since_ms or self.granted * 1000

    def counts_for(self, client_created_at: int) -> bool:
        """In force, and given to the client as it is: not to one removed since, whose id it took."""
        return bool(self.scopes) and self.began_ms >= client_created_at * 1000

    def to_json(self) -> dict[str, object]:
        return {"scopes": list(self.scopes), "granted": self.granted, "since_ms": self.since_ms,
                "not_before_ms": self.not_before_ms}


class ConsentStore:
    """`store.consents`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis

    async def list_consents(self, sub: str) -> list[Consent]:
        found = await self.redis.hgetall(keyspace.consents(sub))
        consents = (_consent(_text(k), _text(v)) for k, v in found.items())
        return sorted((c for c in consents if c.scopes), key=lambda c: c.client_id)

    async def get_consent(self, sub: str, client_id: str) -> Consent | None:
        """The consent in force; None if there is none (never given, or withdrawn)."""
        record = await self.consent_record(sub, client_id)
        return record if record is not None and record.scopes else None

    async def consent_record(self, sub: str, client_id: str) -> Consent | None:
        """The record as kept, a withdrawal's mark (no scopes) included."""
        raw = await self.redis.hget(keyspace.consents(sub), client_id)
        return _consent(client_id, _text(raw)) if raw else None

    async def grant_consent(self, sub: str, client_id: str, scopes: Iterable[str], now_ms: int,
                            client_created_at: int = 0) -> Consent:
        """Remember these scopes besides any allowed before (to this client: not one of its id
        created before `client_created_at`); the union is returned."""
        added = set(scopes)

        def grant(before: Consent | None) -> Consent:
            current = before is not None and before.counts_for(client_created_at)
            kept = before.scopes if before is not None and current else ()
            since = before.since_ms if before is not None and current else now_ms
            return Consent(client_id, tuple(sorted(set(kept) | added)), now_ms // 1000, since,
                           before.not_before_ms if before is not None else 0)
        granted = await self._update(sub, client_id, grant)
        assert granted is not None  # grant always writes
        return granted

    async def revoke_consent(self, sub: str, client_id: str, now_ms: int) -> bool:
        """Withdraw it (leaving the mark): whether there was one to withdraw."""
        def withdraw(before: Consent | None) -> Consent | None:
            if before is None or not before.scopes:
                return None
            return Consent(client_id, (), before.granted, 0, now_ms)
        return await self._update(sub, client_id, withdraw) is not None

    async def remove_all_consents(self, sub: str) -> None:
        await self.redis.delete(keyspace.consents(sub))

    async def _update(self, sub: str, client_id: str,
                      change: Callable[[Consent | None], Consent | None]) -> Consent | None:
        """`change` applied to the record as it is now, written only if the user's consents were
        not written meanwhile, else applied again (WATCH, as Connection.update_json does for a
        JSON key); None from `change` writes nothing."""
        key = keyspace.consents(sub)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, client_id)
                    changed = change(_consent(client_id, _text(raw)) if raw else None)
                    if changed is None:
                        return None
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    pipe.hset(key, client_id, json.dumps(changed.to_json()))
                    await pipe.execute()
                    return changed
                except WatchError:
                    continue


def _consent(client_id: str, value: str) -> Consent:
    record = json.loads(value)
    return Consent(client_id, tuple(record["scopes"]), int(record["granted"]), int(record.get("since_ms", 0)),
                   int(record.get("not_before_ms", 0)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
