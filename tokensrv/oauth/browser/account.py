"""The account page's protocol side (/account): who is signed in (the SSO session) and what they
may change. This round it has one section, two-step verification (TOTP); each section is an
`action` of the one form handler below, so later ones (sessions, passkeys, password) join as more.

Like the login page: a POST must echo the browser's CSRF cookie (double submit) and come from our
own origin (server/web/same_origin.py, checked by the handler first). Removing the second factor
asks for a current code or the password again: a session left open on a shared computer is not
enough to weaken the account.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.browser import passkey_account, second_factor, sessions
from tokensrv.oauth.browser.authorize import park_for_page
from tokensrv.oauth.browser.second_factor import WRONG_CODE, Setup
from tokensrv.oauth.browser.signin import LoginExpired, same_secret
from tokensrv.oauth.credentials import check_credentials
from tokensrv.store import User
from tokensrv.store.mfa import SecondFactor
from tokensrv.store.passkeys import Passkey

PATH = "/account"
NOT_CONFIRMED = "Enter your current 6-digit code, or your password, to turn two-step verification off."


@dataclass(frozen=True)
class SignIn:
    """No usable session: the login page, which comes back here."""
    request_id: str


@dataclass(frozen=True)
class Account:
    """What the page shows. `recovery_codes` only right after enrolment: they are never shown again."""
    csrf_token: str
    user: User
    offered: bool  # TOKENSRV_MFA is not off
    factor: SecondFactor | None
    setup: Setup | None = None
    recovery_codes: tuple[str, ...] = ()
    notice: str | None = None
    error: str | None = None
    typed: str = ""
    passkeys: tuple[Passkey, ...] = ()  # account_passkeys.html; added by script (passkey_account.py)
    passkey_error: str | None = None


Action = Callable[[Provider, Account, Mapping[str, str], str], Awaitable[Account]]


async def account_page(p: Provider, method: str, params: Mapping[str, str], session_secret: str | None,
                       browser: str, csrf_cookie: str | None, remote: str) -> SignIn | Account:
    if method == "POST" and not same_secret(params.get("csrf_token"), csrf_cookie):
        raise LoginExpired("account page: CSRF token does not match the cookie")
    session = await sessions.current(p, session_secret)
    user = await p.store.users.get_user(session.sub) if session is not None else None
    if session is None or user is None:
        return SignIn(await park_for_page(p, browser, PATH))
    shown = Account(browser, user, second_factor.offered(p), await p.store.mfa.get_second_factor(user.sub),
                    passkeys=tuple(await p.store.passkeys.list_passkeys(user.sub)))
    if method != "POST":
        return shown
    action = ACTIONS.get(params.get("action", ""))
    if action is None:
        raise InvalidRequest("unknown account page action", description="unknown action")
    return await action(p, shown, params, remote)


async def _start_setup(p: Provider, shown: Account, params: Mapping[str, str], remote: str) -> Account:
    return replace(shown, setup=await second_factor.setup_for(p, shown.user))


async def _confirm_setup(p: Provider, shown: Account, params: Mapping[str, str], remote: str) -> Account:
    code = params.get("code", "")[:64]
    codes = await second_factor.enrol(p, shown.user, code, remote)
    if codes is None:
        return replace(shown, setup=await second_factor.setup_for(p, shown.user), error=WRONG_CODE, typed=code)
    return replace(shown, factor=await p.store.mfa.get_second_factor(shown.user.sub), recovery_codes=tuple(codes),
                   notice="Two-step verification is on.")


async def _confirmed(p: Provider, shown: Account, params: Mapping[str, str], remote: str) -> bool:
    """Recent authentication: the password, a current TOTP code, or a passkey assertion."""
    code, password = params.get("code", "")[:64], params.get("password", "")
    if password:  # the login limit counts it like any password
        user = await check_credentials(p, shown.user.username, password, remote)
        return user is not None and user.sub == shown.user.sub
    if params.get("assertion"):
        return await passkey_account.confirmed(p, shown.user, params["assertion"], shown.csrf_token, remote)
    return bool(code) and await second_factor.verify(p, shown.user.sub, code, "", remote) is not None


async def _remove(p: Provider, shown: Account, params: Mapping[str, str], remote: str) -> Account:
    if not await _confirmed(p, shown, params, remote):
        return replace(shown, error=NOT_CONFIRMED, typed=params.get("code", "")[:64])
    await second_factor.remove(p, shown.user.sub, remote)
    return replace(shown, factor=None, notice="Two-step verification is off.")


async def _remove_passkey(p: Provider, shown: Account, params: Mapping[str, str], remote: str) -> Account:
    if not await _confirmed(p, shown, params, remote):
        return replace(shown, passkey_error=passkey_account.NOT_CONFIRMED)
    await passkey_account.remove(p, shown.user, params.get("credential", ""), remote)
    return replace(shown, passkeys=tuple(await p.store.passkeys.list_passkeys(shown.user.sub)),
                   notice="The passkey was removed.")


ACTIONS: dict[str, Action] = {"totp-start": _start_setup, "totp-confirm": _confirm_setup, "totp-remove": _remove,
                              "passkey-remove": _remove_passkey}
