"""The login page's protocol side: a pending authorization request, its CSRF binding, then the
credentials, a new SSO session and the authorization code (RFC 6749 §4.1.2).

CSRF: the browser holds a random value in an HttpOnly cookie. The form must echo it in
`csrf_token` (double submit) and the pending request stores its digest, so a login started in one
browser can be finished only there: a third-party page can neither post the form nor log the
victim into the attacker's account with a request id of its own.
"""
from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.auth_methods import AMR_PASSWORD
from tokensrv.oauth.browser import second_factor, sessions, step_up
from tokensrv.oauth.browser.authorize import CONSENT_PATH, code_or_consent
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.oauth.credentials import check_credentials
from tokensrv.oauth.endpoints.revocation import user_is_current
from tokensrv.store import BrowserSession, PendingLogin, User

FAILURE = "Invalid username or password."
# a step-up confirms the session's user (as Keycloak does: "You are already authenticated as
# different user"); signing in as someone else starts from signing out
DIFFERENT_USER = "This confirms the account already signed in. To use another account, sign out first."


class LoginExpired(InvalidRequest):
    description = ("This sign-in request has expired or was started in another browser. "
                   "Go back to the application and sign in again.")


@dataclass(frozen=True)
class Retry:
    """Show the form again (with the one generic failure message, if any)."""
    request_id: str
    pending: PendingLogin
    csrf_token: str  # the browser's CSRF cookie, echoed in the form
    error: str | None = None
    confirm_username: str = ""  # a step-up (prompt=login, max_age): whose password, shown fixed


@dataclass(frozen=True)
class SignedIn:
    session_secret: str  # the new SSO cookie
    session: BrowserSession
    location: str  # back to the client with the code, or on to the consent page
    recovery_codes: tuple[str, ...] = ()  # enrolled on the way (TOTP required): shown once, then on


@dataclass(frozen=True)
class SecondStep:
    """The password was right; the second step (oauth/browser/two_step.py) is next."""
    request_id: str


def same_secret(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


async def pending_login(p: Provider, request_id: str | None, browser: str | None) -> tuple[str, PendingLogin]:
    """The pending request, if it exists, is still fresh, and was started in this browser."""
    if not request_id or not browser:
        raise LoginExpired("no request id or no CSRF cookie")
    pending = await p.store.sessions.get_pending_login(request_id)
    if pending is None or p.now() >= pending.expires_at:
        raise LoginExpired("unknown or expired pending login")
    if not same_secret(secret_digest(browser), pending.browser):
        raise LoginExpired("pending login of another browser")
    return browser, pending


async def sign_in_request(p: Provider, request_id: str | None, browser: str | None) -> tuple[str, PendingLogin]:
    """The pending request, as pending_login finds it, if it is one a sign-in may finish: a
    consent request (parked for a signed-in user, waiting for that user's answer) is not, or
    whoever is at the browser could turn it into a session as that user (or as themselves)."""
    csrf, pending = await pending_login(p, request_id, browser)
    if pending.resume == CONSENT_PATH:
        raise LoginExpired("a consent request is not a sign-in")
    return csrf, pending


async def parked_session_stands(p: Provider, pending: PendingLogin, session_secret: str | None) -> None:
    """A step-up stands on the SSO session it was parked for (no password was typed for its user):
    once that session ended (logout, sign-out everywhere, its lifetime), whoever is at the browser
    must not finish it as that user."""
    if not pending.session:
        return
    if not same_secret(secret_digest(session_secret) if session_secret else None, pending.session) \
            or await sessions.current(p, session_secret) is None:
        raise LoginExpired("the session this step-up was for has ended")


async def _retry(p: Provider, request_id: str, pending: PendingLogin, csrf: str, error: str | None = None) -> Retry:
    confirmed = await p.store.users.get_user(pending.confirm) if pending.confirm else None
    if pending.confirm and (confirmed is None or confirmed.disabled):
        raise LoginExpired("the user to confirm is gone")
    return Retry(request_id, pending, csrf, error, confirmed.username if confirmed else "")


async def show(p: Provider, request_id: str | None, browser: str | None) -> Retry:
    csrf, pending = await sign_in_request(p, request_id, browser)
    return await _retry(p, request_id or "", pending, csrf)


async def sign_in(p: Provider, form: Mapping[str, str], browser: str | None,
                  session_secret: str | None, remote: str, agent: str = "") -> Retry | SecondStep | SignedIn:
    """Check the form and the credentials; on success, a fresh session and the code redirect."""
    request_id = form.get("request", "")
    csrf, pending = await sign_in_request(p, request_id, browser)
    if not same_secret(form.get("csrf_token"), csrf):
        raise LoginExpired("CSRF token does not match the cookie")
    username, password = form.get("username"), form.get("password")
    # rate limited per username and address; raises SlowDown past the limit
    user = await check_credentials(p, username, password, remote) if username and password else None
    if user is None:
        return await _retry(p, request_id, pending, csrf, FAILURE)
    if pending.confirm and user.sub != pending.confirm:
        return await _retry(p, request_id, pending, csrf, DIFFERENT_USER)
    if await second_factor.needed(p, user) or await step_up.mfa_wanted(p, pending.request):
        # the same request waits, now knowing whose password it was
        waiting = dataclasses.replace(pending, sub=user.sub, since_ms=p.now_ms())
        await p.store.sessions.put_pending_login(request_id, waiting, max(1, pending.expires_at - p.now()))
        return SecondStep(request_id)
    return await finish(p, request_id, user, session_secret, AMR_PASSWORD, (remote, agent))


async def finish(p: Provider, request_id: str, user: User, session_secret: str | None,
                 amr: tuple[str, ...], where: tuple[str, str] = ("", "")) -> SignedIn:
    """Every factor checked: the pending request is taken (once), a new session, then the code
    (or first the consent page: oauth/browser/consent.py)."""
    pending = await p.store.sessions.take_pending_login(request_id)
    if pending is None:
        raise LoginExpired("the form was submitted twice")  # the other submission finished it
    # read again: disabled, or signed out everywhere (a password change) since its factor was checked
    user = await p.store.users.get_user(user.sub) or dataclasses.replace(user, disabled=True)
    if user.disabled or (pending.since_ms and not user_is_current(user, pending.since_ms)):
        raise LoginExpired("the user was disabled or signed out since this sign-in began")
    secret, session = await sessions.start(p, user, session_secret, amr, where)
    if pending.resume:  # a sign-in for one of our own pages (device, account): back there, no code
        return SignedIn(secret, session, pending.resume)
    return SignedIn(secret, session, await code_or_consent(p, pending.request, session, pending.browser, secret))
