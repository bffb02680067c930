"""The account page's password change: the current password (which is itself the recent
authentication), the new one twice, the server's password rules (tokensrv.passwords).

A new password signs the user out everywhere as `tokensrv user passwd` does (revocation.revoke_user:
the not-before ends every other session and refresh family, their applications are told), and
this browser stays signed in on a new session (new cookie secret, new sid, created after the
not-before; its old sid is kept for logout, as at any sign-in).
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.errors import TemporarilyUnavailable
from tokensrv.oauth import Provider
from tokensrv.oauth.browser import sessions as browser_sessions
from tokensrv.oauth.browser.account.page import Account, Visit, replace
from tokensrv.oauth.credentials import check_credentials
from tokensrv.oauth.endpoints.revocation import revoke_user
from tokensrv.observability import events
from tokensrv.passwords import Unavailable, password_problem

NOT_CURRENT = "Your current password is not right. Type it again; nothing was changed."
DISABLED = "Your password is changed, but your account was disabled meanwhile: you are signed out."
DIFFERENT = "The two new passwords are not the same. Type the new password twice."


async def change(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    current, new = params.get("current_password", ""), params.get("new_password", "")
    problem = _new_problem(new, params.get("new_password_again", ""))
    if problem:  # judged before the current password: a typo costs no guess of the login limit
        return replace(shown, section="password", error=problem)
    user = await check_credentials(p, shown.user.username, current, visit.remote) if current else None
    if user is None or user.sub != shown.user.sub:
        return replace(shown, section="password", error=NOT_CURRENT)
    try:
        new_hash = await p.passwords.hash(new)
    except Unavailable as exc:
        raise TemporarilyUnavailable(str(exc)) from None
    updated = await revoke_user(p, user, password_hash=new_hash)
    if updated.disabled:  # disabled by an operator meanwhile: the change stands, no new session
        return replace(shown, user=updated, section="password", error=DISABLED)
    secret, _ = await browser_sessions.start(p, updated, visit.secret, visit.session.amr, (visit.remote, visit.agent))
    events.account_changed("password_changed", user.sub, visit.remote)
    return replace(shown, user=updated, section="password", new_secret=secret,
                   notice="Your password is changed. You are signed out everywhere else.")


def _new_problem(new: str, again: str) -> str | None:
    problem = password_problem(new)
    if problem is not None:
        return f"The new password is not allowed: {problem}."
    return DIFFERENT if new != again else None
