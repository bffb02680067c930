"""The account page's "Applications you allowed": the user's consents (store/consents.py), each
withdrawn by the `consent-revoke` action. Withdrawing also ends that client's refresh families of
the user (as the grants section's disconnect does): an application that may no longer ask keeps
no tokens it got with the consent. `withdraw` is the operators' too (`tokensrv user consents
USERNAME --revoke CLIENT_ID`).

A consent is named on the form by its client_id and looked up among the signed-in user's own: a
forged form withdraws nothing of anyone else's.
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.oauth import Provider
from tokensrv.oauth.browser.account.grants import end_families, live
from tokensrv.oauth.browser.account.page import Account, ConsentView, Visit, replace
from tokensrv.oauth.browser.consent import scope_words
from tokensrv.observability import events
from tokensrv.store import User

GONE = "That application was not allowed any more. The list below is up to date."


async def listed(p: Provider, shown: Account) -> Account:
    views = []
    for consent in await p.store.consents.list_consents(shown.user.sub):
        client = await p.store.clients.get_client(consent.client_id)
        name = (client.client_name or client.client_id) if client is not None else consent.client_id
        words = tuple(scope_words(p, s) for s in consent.scopes)
        views.append(ConsentView(consent.client_id, name, words, consent.granted))
    return replace(shown, consents=tuple(sorted(views, key=lambda v: -v.granted)))


async def withdraw(p: Provider, user: User, client_id: str) -> int | None:
    """Withdraw the consent and end the client's refresh families of the user in the index: how
    many ended; None if the user had not allowed that client. Families beyond the index (its
    latest 100) and codes not yet redeemed die too: the withdrawal's mark is checked by the
    refresh and code grants (oauth/consent_checks.py)."""
    if not await p.store.consents.revoke_consent(user.sub, client_id, p.now_ms()):
        return None
    return await end_families(p, user, [f for f in await live(p, user) if f.client_id == client_id])


async def revoke(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    client_id = params.get("client", "")[:128]
    if await withdraw(p, shown.user, client_id) is None:
        return replace(shown, section="consents", error=GONE)
    events.consent_changed("withdrawn", shown.user.sub, visit.remote, client_id=client_id)
    return replace(shown, section="consents",
                   notice="Withdrawn: it can no longer get tokens for you without asking again.")
