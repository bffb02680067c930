"""The account page's two-step verification section (TOTP): set up, confirm, turn off.

Turning it off asks for a current code or the password every time (stronger than the page's
recent-authentication rule): a session left open on a shared computer is not enough to weaken the
account. Confirming it raises the current session to two-step (its amr), as a sign-in with a code
would have: the code was just typed in this browser.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from tokensrv.oauth import Provider
from tokensrv.oauth.browser import second_factor
from tokensrv.oauth.browser.account.page import Account, Visit, confirmed, replace
from tokensrv.oauth.browser.second_factor import WRONG_CODE

AMR_SECOND = ("otp", "mfa")  # what a TOTP code adds to how the session signed in (RFC 8176)
NOT_CONFIRMED = "Enter your current 6-digit code, or your password, to turn two-step verification off."


async def start_setup(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    return replace(shown, setup=await second_factor.setup_for(p, shown.user))


async def confirm_setup(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    code = params.get("code", "")[:64]
    codes = await second_factor.enrol(p, shown.user, code, visit.remote)
    if codes is None:
        return replace(shown, setup=await second_factor.setup_for(p, shown.user), error=WRONG_CODE, typed=code)
    raised = dataclasses.replace(visit.session, amr=tuple(dict.fromkeys((*visit.session.amr, *AMR_SECOND))))
    await p.store.sessions.touch_session(visit.digest, raised, p.settings.session_idle_ttl)
    return replace(shown, factor=await p.store.mfa.get_second_factor(shown.user.sub), recovery_codes=tuple(codes),
                   notice="Two-step verification is on.")


async def remove(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    if not await confirmed(p, shown, params, visit):
        return replace(shown, error=NOT_CONFIRMED, typed=params.get("code", "")[:64])
    await second_factor.remove(p, shown.user.sub, visit.remote)
    return replace(shown, factor=None, notice="Two-step verification is off.")
