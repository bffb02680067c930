"""What every section of the account page shares: the page's state (`Account`), the visit it
answers (`Visit`: the session and where the request came from), and `require_recent`, the check
a sensitive change makes first. No HTTP."""
from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from tokensrv.oauth import Provider
from tokensrv.oauth.browser import passkey_account, second_factor
from tokensrv.oauth.browser.second_factor import Setup
from tokensrv.oauth.credentials import check_credentials
from tokensrv.observability import events
from tokensrv.store import BrowserSession, User
from tokensrv.store.mfa import SecondFactor
from tokensrv.store.passkeys import Passkey

PATH = "/account"
WRONG_PASSWORD = "That password is not right. Type your current password to go on."
MAX_KEPT = 8  # fields of an action kept across the password prompt


@dataclass(frozen=True)
class Visit:
    """The request: its SSO session (the cookie `secret` and its `digest` stay server-side), and
    the client address and User-Agent it came with."""
    secret: str
    digest: str
    session: BrowserSession
    remote: str
    agent: str


@dataclass(frozen=True)
class SessionView:
    """One SSO session as the page lists it: addressed by its sid (which ID tokens carry: no secret)."""
    sid: str
    current: bool
    address: str
    device: str  # "Firefox on Linux", or "" when the User-Agent says nothing we know
    signed_in: int
    last_seen: int
    two_step: bool
    apps: tuple[str, ...]  # names of the applications it issued codes to


@dataclass(frozen=True)
class GrantView:
    """A refresh family: a device (device grant) or an application with access. `handle` is a
    digest of its id, opaque on the page; the server finds the family again among the user's own."""
    handle: str
    client_name: str
    since: int
    last_used: int
    device: bool


@dataclass(frozen=True)
class ConsentView:
    """An application the user allowed (store/consents.py): addressed by its client_id."""
    client_id: str
    client_name: str
    scopes: tuple[str, ...]  # in words (consent.scope_words)
    granted: int


@dataclass(frozen=True)
class Reauth:
    """The password prompt of a sensitive action: the action's own fields, posted again with it,
    back to its `section` of the page."""
    kept: tuple[tuple[str, str], ...]
    section: str = ""


@dataclass(frozen=True)
class Account:
    """What the page shows. `recovery_codes` only right after enrolment: they are never shown again.
    `section` names where the notice or error belongs (two-step, sessions, devices, password, confirm)."""
    csrf_token: str
    user: User
    offered: bool  # TOKENSRV_MFA is not off
    factor: SecondFactor | None
    setup: Setup | None = None
    recovery_codes: tuple[str, ...] = ()
    notice: str | None = None
    error: str | None = None
    typed: str = ""
    section: str = "two-step"
    sessions: tuple[SessionView, ...] = ()
    grants: tuple[GrantView, ...] = ()
    reauth: Reauth | None = None
    new_secret: str | None = None  # this browser's new session cookie (after a password change)
    session_ttl: int = 0
    passkeys: tuple[Passkey, ...] = ()  # account_passkeys.html; added by script (passkey_account.py)
    recent: bool = False  # signed in (or confirmed) within TOKENSRV_RECENT_AUTH: a passkey may be added
    consents: tuple[ConsentView, ...] = ()  # account_consents.html (consents.py)


Action = Callable[[Provider, Account, Mapping[str, str], Visit], Awaitable[Account]]


def replace(shown: Account, **changes: object) -> Account:
    return dataclasses.replace(shown, **changes)  # type: ignore[arg-type]


async def confirmed(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> bool:
    """A change that weakens the account asks every time, whatever the session's age: the password
    (counted by the login limit like any), a current TOTP code, or a passkey assertion."""
    code, password = params.get("code", "")[:64], params.get("password", "")
    if password:
        user = await check_credentials(p, shown.user.username, password, visit.remote)
        return user is not None and user.sub == shown.user.sub
    if params.get("assertion"):
        return await passkey_account.confirmed(p, shown.user, params["assertion"], shown.csrf_token, visit.remote)
    return bool(code) and await second_factor.verify(p, shown.user.sub, code, "", visit.remote) is not None


async def require_recent(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit,
                         section: str = "") -> Account | None:
    """A sensitive change goes on (None) when the session signed in within TOKENSRV_RECENT_AUTH, or
    the password was just typed again (`reauth_password`: counted by the login limit, and the
    session's auth_time then moves to now). Otherwise the page asking for the password, which
    posts this action again with its own fields (never a password: those are typed again), and
    comes back to `section` (the id of the action's section on the page)."""
    now = p.now()
    if now - visit.session.auth_time < p.settings.recent_auth:
        return None
    password = params.get("reauth_password", "")
    if password:
        user = await check_credentials(p, shown.user.username, password, visit.remote)
        if user is not None and user.sub == shown.user.sub:
            renewed = dataclasses.replace(visit.session, auth_time=now)
            await p.store.sessions.touch_session(visit.digest, renewed, p.settings.session_idle_ttl)
            events.account_changed("reauthenticated", shown.user.sub, visit.remote)
            return None
    kept = tuple((k, v[:256]) for k, v in params.items()
                 if k != "csrf_token" and "password" not in k)[:MAX_KEPT]
    return replace(shown, reauth=Reauth(kept, section), section="confirm", error=WRONG_PASSWORD if password else None)
