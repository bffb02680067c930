"""Administration of the claim rules document (custom scopes and claim mappings, tokensrv/claims.py)
kept in the store, which every server process follows at once (oauth/live_rules.py). What
`tokensrv claims set/show/clear`, `tokensrv apply` and the admin API share: plain values in, a
JSON-able result out, AdminError with a one-line message naming the entry for a bad document.
Auditing is the caller's, as for the acts of admin/operations.py.
"""
from __future__ import annotations

from typing import Any

from tokensrv.admin.operations import AdminError
from tokensrv.claims import ClaimsError, rules_of
from tokensrv.oauth import Provider
from tokensrv.oauth.live_rules import describe, effective_of
from tokensrv.store.claim_rules import StoredRules


async def set_claim_rules(p: Provider, document: object) -> dict[str, Any]:
    """Store `document` (a parsed JSON object, checked as the TOKENSRV_CLAIMS file is) as the rules
    every instance follows. {"changed": False, ...} when it is the stored one: nothing written,
    nothing announced."""
    try:
        rules = rules_of(document)
    except ClaimsError as exc:
        raise AdminError(str(exc)) from None
    assert isinstance(document, dict)  # rules_of refuses anything else
    stored = await p.store.claim_rules.put_rules(document, p.now())
    changed = stored is not None
    if stored is None:
        stored = await p.store.claim_rules.get_rules()
    else:
        p.claim_rules.swap(stored)  # this process at once; the others by the announcement
    return {"changed": changed, "version": stored.version if stored else None,
            "scopes": list(rules.scopes), "clients": list(rules.clients)}


async def get_claim_rules(p: Provider) -> dict[str, Any] | None:
    """The stored document and its version; None if the store holds none (never set, or cleared)."""
    stored = await p.store.claim_rules.get_rules()
    if stored is None or stored.document is None:
        return None
    return {"version": stored.version, "updated_at": stored.updated_at, "document": stored.document}


async def clear_claim_rules(p: Provider) -> dict[str, Any]:
    """No document in the store: every instance falls back to TOKENSRV_CLAIMS's file, else the
    built-in scopes. {"changed": False} when there was none."""
    current = await p.store.claim_rules.get_rules()
    if current is None or current.document is None:
        return {"changed": False, "version": current.version if current else None}
    stored = await p.store.claim_rules.put_rules(None, p.now())
    if stored is not None:
        p.claim_rules.swap(stored)  # this process at once; the others by the announcement
    return {"changed": stored is not None, "version": (stored or current).version}


async def effective_claim_rules(p: Provider) -> dict[str, Any]:
    """The rules a server with these settings follows now, and where they come from (store, file,
    built-in): {"source", "version", "document"}. A bad stored document is an AdminError."""
    stored: StoredRules | None = await p.store.claim_rules.get_rules()
    try:
        return describe(effective_of(stored, p.claim_rules.fallback))
    except ClaimsError as exc:
        raise AdminError(f"the store's claim rules are refused: {exc}") from None
