"""This process's claim rules (tokensrv/claims.py), as the protocol code reads them on every token,
UserInfo, consent and discovery answer: held in memory, swapped when the store's document changes.

Which rules are in effect: the store's document (`tokensrv claims set`, store/claim_rules.py) when
there is one; else TOKENSRV_CLAIMS's file (settings.claims, read at start); else the built-in scopes.

The server subscribes to the document's change channel on the client cache's subscription
(store/cache.py): each announcement, and each (re)subscription (what was announced while it was
down is unknown), marks the rules stale, and follow() reads the document again, once per burst of
announcements. Nothing of it is on the request path: a request reads `current`, an attribute.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from tokensrv.claims import NO_RULES, ClaimRules, ClaimsError, rules_of
from tokensrv.store.claim_rules import StoredRules
from tokensrv.store.protocols import ClaimRulesDocument

log = logging.getLogger("tokensrv")

RETRY = 1.0  # seconds between reads of the document while the store does not answer


@dataclass(frozen=True)
class Effective:
    """The rules in effect, and where they come from: "store", "file" or "built-in"."""
    rules: ClaimRules
    source: str
    version: int | None = None  # the store document's


class LiveRules:
    def __init__(self, fallback: ClaimRules) -> None:
        self.fallback = Effective(fallback, "built-in" if fallback is NO_RULES else "file")
        self.effective = self.fallback
        self.current = fallback  # the request path reads this one attribute
        self._stored: StoredRules | None = None  # what the rules in effect were read from
        self._stale = asyncio.Event()
        self._following = True
        # whether the store's document has been read at least once: until then the fallback may not
        # be the rules in effect, and /readyz says the process is not ready
        self.read = False

    def changed(self) -> None:
        """An announcement (or a new subscription): read the document again (follow() does)."""
        self._stale.set()

    def swap(self, stored: StoredRules | None) -> Effective:
        """The rules of `stored` (None, or a cleared document: the fallback) put in effect. A
        document the store holds but that does not pass the checks (written by hand) is refused
        and logged: the rules in effect stay."""
        if stored == self._stored:  # the whole record: a store emptied and set again restarts versions
            return self.effective
        try:
            effective = effective_of(stored, self.fallback)
        except ClaimsError as exc:
            log.error("claim rules in the store refused, keeping those in effect: %s", exc)
            return self.effective
        self._stored, self.effective, self.current = stored, effective, effective.rules
        log.info("claim rules in effect", extra={"fields": {"source": effective.source, "version": effective.version}})
        return self.effective

    async def reload(self, store: ClaimRulesDocument) -> Effective:
        """Read the document and swap; a record that is not one (written by hand) is logged and
        the rules in effect stay. The store's own failures are the caller's (follow() retries)."""
        try:
            stored = await store.get_rules()
        except (ValueError, KeyError, TypeError) as exc:
            self.read = True  # read, and refused: reading it again would not help
            log.error("claim rules in the store unreadable (%s), keeping those in effect", type(exc).__name__)
            return self.effective
        self.read = True
        return self.swap(stored)

    def stop(self) -> None:
        self._following = False
        self._stale.set()

    async def follow(self, store: ClaimRulesDocument) -> None:
        """Until stop(): each time the rules are marked stale, read the document and swap."""
        while self._following:
            await self._stale.wait()
            self._stale.clear()
            if not self._following:
                return
            try:
                await self.reload(store)
            except (RedisError, OSError) as exc:
                log.warning("could not read the claim rules (%s): retrying", type(exc).__name__)
                self._stale.set()
                await asyncio.sleep(RETRY)  # a backoff, not a synchronisation


def effective_of(stored: StoredRules | None, fallback: Effective) -> Effective:
    """The store's document when there is one, else `fallback`; ClaimsError if it is bad."""
    if stored is None or stored.document is None:
        return fallback
    return Effective(rules_of(stored.document), "store", stored.version)


def describe(effective: Effective) -> dict[str, Any]:
    """What `tokensrv claims show --json` prints."""
    return {"source": effective.source, "version": effective.version, "document": effective.rules.document()}
