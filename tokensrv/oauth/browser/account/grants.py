"""The account page's devices and applications: the user's live refresh families (from the
per-user index beside them, store/refresh.py), as devices (clients of the device grant) and
applications with access, each disconnected by revoking its family (as RFC 7009 revocation does).

A family is named on the page by a digest of its id (`handle`), found again only among the
signed-in user's own families: a forged form disconnects nothing of anyone else's.
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.oauth import Provider
from tokensrv.oauth.browser.account.page import Account, GrantView, Visit, replace
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.oauth.endpoints.revocation import kill_family, user_is_current
from tokensrv.observability import events
from tokensrv.store import RefreshFamily, User

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GONE = "That access has ended already. The list below is up to date."


def handle_of(family_id: str) -> str:
    return secret_digest(family_id)[:22]


async def live(p: Provider, user: User) -> list[RefreshFamily]:
    """The user's families that can still refresh; the index forgets the others."""
    now, found = p.now(), []
    for family_id in await p.store.refresh.user_family_ids(user.sub, now):
        read = await p.store.refresh.get_family(family_id)
        family = read[0] if read is not None else None
        if (family is None or family.live_until(p.settings.refresh_family_ttl) <= now
                or not user_is_current(user, family.created_ms) or await p.store.refresh.session_ended(family.sid)):
            await p.store.refresh.unindex_family(user.sub, family_id)
        else:
            found.append(family)
    return found


async def end_families(p: Provider, user: User, families: list[RefreshFamily]) -> int:
    """End these families of the user (their tokens revoked) and forget them in the index: how many."""
    for family in families:
        await kill_family(p, family)
        await p.store.refresh.unindex_family(user.sub, family.family_id)
    return len(families)


async def listed(p: Provider, user: User) -> tuple[GrantView, ...]:
    views = []
    for family in await live(p, user):
        client = await p.store.clients.get_client(family.client_id)
        name = (client.client_name or client.client_id) if client is not None else family.client_id
        # the idle end moves with each refresh: REFRESH_TOKEN_TTL before it was the last one
        last = max(family.created_ms // 1000, family.idle_expires_at - p.settings.refresh_token_ttl)
        device = client is not None and DEVICE_GRANT in client.grant_types
        views.append(GrantView(handle_of(family.family_id), name, family.created_ms // 1000, last, device))
    return tuple(sorted(views, key=lambda v: -v.last_used))


async def disconnect(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    handle = params.get("grant", "")[:64]
    target = [f for f in await live(p, shown.user) if handle_of(f.family_id) == handle]
    if not target:
        return replace(shown, section="grants", error=GONE)
    await end_families(p, shown.user, target[:1])
    events.account_changed("access_revoked", shown.user.sub, visit.remote, client_id=target[0].client_id)
    return replace(shown, section="grants", notice="Disconnected: it can no longer get tokens for you.")
