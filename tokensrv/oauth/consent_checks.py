"""What a withdrawn consent ends beyond the families the account page finds (No HTTP).

Withdrawing (the account page, `tokensrv user consents --revoke`) leaves a mark in the store
(store/consents.py: no scopes, `not_before_ms`). The grants check it only for a client that asks
consent (Client.asks_consent): the others, most traffic, read nothing more. Then one read of the
(user, client) consent:
- the refresh grant: a family begun before the last withdrawal is dead (the account page ends
  the families in the user's index, its latest 100; this ends the rest, at their next use);
- the code grant: a code is redeemed only while the user's consent covers its scope (a code
  issued before a withdrawal and redeemed after gets nothing).
"""
from __future__ import annotations

from tokensrv.oauth import Provider
from tokensrv.store import Client


async def withdrawn_since(p: Provider, client: Client, sub: str, issued_ms: int) -> bool:
    """Whether the user withdrew their consent to `client` since `issued_ms` (a family's start;
    in the same millisecond counts as since: fail closed)."""
    if not client.asks_consent:
        return False
    record = await p.store.consents.consent_record(sub, client.client_id)
    return record is not None and issued_ms <= record.not_before_ms


async def consent_covers(p: Provider, client: Client, sub: str, scope: str) -> bool:
    """Whether the user's consent in force covers `scope` (a client that does not ask: always)."""
    if not client.asks_consent:
        return True
    consent = await p.store.consents.get_consent(sub, client.client_id)
    return consent is not None and consent.counts_for(client.created_at) and set(scope.split()) <= set(consent.scopes)
