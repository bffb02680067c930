"""The account page's passkeys section: listed here, added by the page's script through their own
endpoints (oauth/browser/passkey_account.py), removed by this form action. Removing one asks,
like turning two-step verification off, for the password, a current code or a passkey every time;
adding one needs a recent sign-in (`unlock` asks for the password when the sign-in is older).
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.oauth import Provider
from tokensrv.oauth.browser import passkey_account
from tokensrv.oauth.browser.account.page import Account, Visit, confirmed, replace, require_recent


async def listed(p: Provider, shown: Account) -> Account:
    return replace(shown, passkeys=tuple(await p.store.passkeys.list_passkeys(shown.user.sub)))


async def remove(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    if not await confirmed(p, shown, params, visit):
        return replace(shown, section="passkeys", error=passkey_account.NOT_CONFIRMED)
    if not await passkey_account.remove(p, shown.user, params.get("credential", ""), visit.remote):
        return replace(shown, section="passkeys", error="That passkey was removed already.")
    return replace(shown, section="passkeys", notice="The passkey was removed.")


async def unlock(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    """The password typed again (or a sign-in recent enough): then the page offers to add one."""
    prompt = await require_recent(p, shown, params, visit, section="passkeys")
    if prompt is not None:
        return prompt
    return replace(shown, section="passkeys", recent=True, notice="Thank you. You can add a passkey now.")
