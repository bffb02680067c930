"""The account page's passkeys (no HTTP): the options for adding one or for confirming it is you
with one, the new passkey kept, a passkey removed (after recent authentication, account.py).

The page's script posts JSON; each body carries the CSRF token (double submit, as the forms do)
and the session cookie names the user: the body never says whose account it is.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensrv.errors import InvalidRequest, LoginRequired
from tokensrv.oauth import Provider
from tokensrv.oauth.browser import passkeys, sessions
from tokensrv.oauth.browser.signin import LoginExpired, same_secret
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.store import User
from tokensrv.store.passkeys import Challenge, Passkey
from tokensrv.verify.json_limits import JSONRejected, parse_object

NOT_CONFIRMED = "Confirm it is you with a passkey, your password or a current 6-digit code to remove a passkey."
NOT_RECENT = "confirm it is you with your password first: reload the page"
MAX_BODY = 16 * 1024  # an attestation with a certificate chain fits; a whole page of JSON does not


def parse_body(raw: bytes) -> dict[str, Any]:
    """A JSON object from outside: bounded in size and nesting (verify/json_limits.py)."""
    try:
        return parse_object(raw, max_bytes=MAX_BODY)
    except JSONRejected as exc:  # fixed text naming the reason: fine to send
        raise InvalidRequest(f"passkey body: {exc}", description=f"the body must be a JSON object: {exc}") from None


async def _user(p: Provider, body: Mapping[str, Any], session_secret: str | None, csrf_cookie: str | None,
                recent: bool = False) -> User:
    """The signed-in user; `recent`: who signed in (or confirmed it) within TOKENSRV_RECENT_AUTH,
    as adding a passkey needs: a passkey signs in alone, and outlives a password change, so a
    session left open must not be enough to plant one (the page asks for the password first)."""
    token = body.get("csrf_token")
    if not same_secret(token if isinstance(token, str) else None, csrf_cookie):
        raise LoginExpired("account passkeys: CSRF token does not match the cookie")
    session = await sessions.current(p, session_secret)
    user = await p.store.users.get_user(session.sub) if session is not None else None
    if session is None or user is None or user.disabled:
        raise LoginRequired("no session", description="you are signed out: reload the page and sign in again")
    if recent and not is_recent(p, session.auth_time):
        raise InvalidRequest("adding a passkey needs a recent sign-in", description=NOT_RECENT)
    return user


def is_recent(p: Provider, auth_time: int) -> bool:
    return p.now() - auth_time < p.settings.recent_auth


async def options(p: Provider, body: Mapping[str, Any], session_secret: str | None, csrf_cookie: str | None) -> str:
    """`purpose` "register": options for a new passkey; "confirm": for an assertion that confirms
    a removal (its answer goes into the removal form, account.py)."""
    user = await _user(p, body, session_secret, csrf_cookie, recent=body.get("purpose") == "register")
    browser = csrf_cookie or ""
    if body.get("purpose") == "register":
        return await passkeys.registration_options(p, user, browser)
    if body.get("purpose") == "confirm":
        return await passkeys.authentication_options(p, browser, passkeys.CONFIRM, user.sub)
    raise InvalidRequest("unknown passkey purpose", description="purpose must be register or confirm")


async def add(p: Provider, body: Mapping[str, Any], session_secret: str | None, csrf_cookie: str | None,
              remote: str) -> Passkey:
    user = await _user(p, body, session_secret, csrf_cookie, recent=True)
    return await passkeys.register(p, user, body, csrf_cookie or "", remote)


async def confirmed(p: Provider, user: User, assertion: str, browser: str, remote: str) -> bool:
    """Whether `assertion` (the form field: navigator.credentials.get()'s answer as JSON) is one
    of this user's passkeys answering a confirmation challenge given to this browser."""
    try:
        body = {"credential": parse_body(assertion.encode())}
        expected = Challenge(passkeys.CONFIRM, secret_digest(browser), user.sub)
        await passkeys.authenticate(p, body, expected, remote)
    except InvalidRequest:
        return False
    return True


async def remove(p: Provider, user: User, credential_id: str, remote: str) -> bool:
    return await passkeys.remove(p, user.sub, credential_id[:512], remote)
