"""The account page's protocol side (/account): who is signed in (the SSO session) and what they
may change. Each section is a module here, and each change an `action` of the one form handler
below: two-step verification (two_step.py), sessions (sso.py), devices and applications
(grants.py), the password (password.py), passkeys (passkeys.py), applications allowed
(consents.py); what they share is in page.py (`require_recent`: the
recent-authentication check a sensitive change makes first).

Like the login page: a POST must echo the browser's CSRF cookie (double submit) and come from our
own origin (server/web/same_origin.py, checked by the handler first).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.browser import second_factor
from tokensrv.oauth.browser import sessions as browser_sessions
from tokensrv.oauth.browser.account import consents, grants, passkeys, password, sso, two_step
from tokensrv.oauth.browser.account.page import PATH, Account, Action, Visit, replace, require_recent
from tokensrv.oauth.browser.authorize import park_for_page
from tokensrv.oauth.browser.passkey_account import is_recent
from tokensrv.oauth.browser.signin import LoginExpired, same_secret
from tokensrv.oauth.clients.metadata import secret_digest

__all__ = ["ACTIONS", "PATH", "Account", "SignIn", "Visit", "account_page", "require_recent"]


@dataclass(frozen=True)
class SignIn:
    """No usable session: the login page, which comes back here."""
    request_id: str


async def account_page(p: Provider, method: str, params: Mapping[str, str], session_secret: str | None,
                       browser: str, csrf_cookie: str | None, remote: str, agent: str = "") -> SignIn | Account:
    if method == "POST" and not same_secret(params.get("csrf_token"), csrf_cookie):
        raise LoginExpired("account page: CSRF token does not match the cookie")
    session = await browser_sessions.current(p, session_secret)
    user = await p.store.users.get_user(session.sub) if session is not None else None
    if session is None or user is None or session_secret is None:
        return SignIn(await park_for_page(p, browser, PATH))
    visit = Visit(session_secret, secret_digest(session_secret), session, remote, agent)
    shown = Account(browser, user, second_factor.offered(p), await p.store.mfa.get_second_factor(user.sub),
                    session_ttl=p.settings.session_ttl, recent=is_recent(p, session.auth_time))
    if method == "POST":
        action = ACTIONS.get(params.get("action", ""))
        if action is None:
            raise InvalidRequest("unknown account page action", description="unknown action")
        shown = await action(p, shown, params, visit)
    if shown.new_secret is not None:  # the page lists the sessions as they are now: this browser's new one
        visit = Visit(shown.new_secret, secret_digest(shown.new_secret), session, remote, agent)
    shown = await consents.listed(p, await passkeys.listed(p, shown))
    return replace(shown, sessions=await sso.listed(p, shown.user, visit), grants=await grants.listed(p, shown.user))


ACTIONS: dict[str, Action] = {
    "totp-start": two_step.start_setup, "totp-confirm": two_step.confirm_setup, "totp-remove": two_step.remove,
    "session-end": sso.end_one, "sessions-end-others": sso.end_others,
    "grant-revoke": grants.disconnect, "password-change": password.change, "passkey-remove": passkeys.remove,
    "passkeys-unlock": passkeys.unlock,
    "consent-revoke": consents.revoke,
}
