"""RFC 8628 §3.1-§3.3 device authorization: the endpoint, user codes, and the verification page.

The device code is 256 random bits, stored only as its SHA-256. The user code is 8 characters
of BCDFGHJKLMNPQRSTVWXZ (§6.1: no vowels, so no words; 20^8 ≈ 2.6e10 codes), shown as
XXXX-XXXX and read back case- and dash-insensitively; it is stored as a digest too.

The verification page needs a signed-in user (the SSO session; else the login page, which comes
back here). It shows which client asks for which scope and asks to approve or deny (§5.4: a
user tricked into entering someone else's code sees whose device they would connect). Guessing
is throttled: each look-up of a user code is counted per address (TOKENSRV_LOGIN_MAX_FAILURES in
TOKENSRV_LOGIN_FAILURE_WINDOW) and across all addresses
(TOKENSRV_DEVICE_USER_CODE_MAX_FAILURES in the same window) before the store is asked; a right
code takes its attempt back. A user code is decided once, while it lives.

A client that requires mfa (`client add --require-mfa`) is approved only by a session that has
it: a password-only session is first led through the second step (oauth/browser/two_step.py,
enrolment if none), which comes back here, as its authorization requests are (step_up.py).
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from tokensrv.errors import InvalidRequest, SlowDown, TemporarilyUnavailable, UnauthorizedClient
from tokensrv.oauth import Provider, ratelimit
from tokensrv.oauth.browser import sessions, step_up
from tokensrv.oauth.browser.authorize import park_for_page
from tokensrv.oauth.browser.signin import LoginExpired, same_secret
from tokensrv.oauth.clients.authentication import authenticate
from tokensrv.oauth.clients.metadata import DEVICE_CODE, secret_digest
from tokensrv.oauth.scopes import grant_scope
from tokensrv.store import AuthorizationRequest, BrowserSession
from tokensrv.store.device import DeviceApproval, PendingDevice

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1
USER_CODE_LENGTH = 8
VERIFICATION_PATH = "/device"
_DASHES_AND_SPACES = re.compile(r"[\s\-\u2010-\u2015\u2212]+")  # the hyphens and dashes, the minus sign
WRONG_CODE = "That code is not valid, has expired or was already used. Check the code on your device."


def new_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return raw[:4] + "-" + raw[4:]


def normalize_user_code(raw: str | None) -> str | None:
    """XXXX-XXXX from what a person typed (any case, dashes and spaces anywhere); None if it
    cannot be a user code."""
    if not raw or len(raw) > 32:
        return None
    code = _DASHES_AND_SPACES.sub("", raw).upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code[:4] + "-" + code[4:]


async def device_authorization(p: Provider, params: Mapping[str, str], authorization: str | None,
                               remote: str) -> dict[str, object]:
    """§3.1-§3.2: a device code for the client, a user code for its user."""
    await ratelimit.limit_address(p, remote)
    client = await authenticate(p, params, authorization, remote, endpoint="device_authorization_endpoint")
    if DEVICE_CODE not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use the device grant")
    scope = grant_scope(params.get("scope"), client.scopes)
    ttl, interval = p.settings.device_code_ttl, p.settings.device_poll_interval
    device_code = secrets.token_urlsafe(32)
    for _ in range(5):  # a user code already in use is drawn again (with 20^8 codes, rarely)
        user_code = new_user_code()
        if await p.store.devices.put_device(secret_digest(device_code), secret_digest(user_code), client.client_id,
                                    scope, p.now() + ttl, interval, ttl):
            break
    else:
        raise TemporarilyUnavailable("no free user code after 5 draws")
    uri = p.settings.issuer + VERIFICATION_PATH
    return {"device_code": device_code, "user_code": user_code, "verification_uri": uri,
            "verification_uri_complete": uri + "?" + urlencode({"user_code": user_code}),
            "expires_in": ttl, "interval": interval}


# ---- the verification page ----

@dataclass(frozen=True)
class SignIn:
    """No usable session: the login page for this pending sign-in, which returns to the page; with
    `second_step`, the session's second step (its client requires mfa)."""
    request_id: str
    second_step: bool = False


@dataclass(frozen=True)
class EnterCode:
    csrf_token: str
    user_code: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Confirm:
    csrf_token: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Decided:
    approved: bool


PageOutcome = SignIn | EnterCode | Confirm | Decided


async def verification_page(p: Provider, method: str, params: Mapping[str, str], session_secret: str | None,
                            browser: str, csrf_cookie: str | None, remote: str) -> PageOutcome:
    """GET shows the form (or, with ?user_code=, the confirmation); POST with the browser's CSRF
    token looks a code up (action=lookup) or decides it (action=approve / deny)."""
    if method == "POST" and not same_secret(params.get("csrf_token"), csrf_cookie):
        raise LoginExpired("device page: CSRF token does not match the cookie")
    user_code = normalize_user_code(params.get("user_code"))
    session = await sessions.current(p, session_secret)
    if session is None:
        return SignIn(await _park(p, browser, user_code))
    action = params.get("action", "lookup") if method == "POST" else "lookup"
    if action not in ("lookup", "approve", "deny"):
        raise InvalidRequest("unknown device page action", description="unknown action")
    if method != "POST" and user_code is None:  # the form; a malformed code is not looked up
        typed = params.get("user_code", "")[:32]
        return EnterCode(browser, typed, WRONG_CODE if typed else None)
    found = await _look_up(p, user_code, remote)
    if found is None or user_code is None:
        return EnterCode(browser, (params.get("user_code") or "")[:32], WRONG_CODE)
    if action != "deny" and await _lacks_mfa(p, session, found):  # before it is shown or approved
        resume = VERIFICATION_PATH + "?" + urlencode({"user_code": user_code})
        return SignIn(await park_for_page(p, browser, resume, sub=session.sub, session=session_secret), True)
    if action == "lookup":
        return Confirm(browser, user_code, found.client_id, tuple(found.scope.split()))
    approval = _approval(session, found) if action == "approve" else None
    if not await p.store.devices.decide_device(secret_digest(user_code), found.device_digest, approval, p.now_ms()):
        return EnterCode(browser, user_code, WRONG_CODE)
    return Decided(approval is not None)


async def _lacks_mfa(p: Provider, session: BrowserSession, found: PendingDevice) -> bool:
    """The device's client requires mfa (raises when TOKENSRV_MFA=off) and the session has not reached it."""
    request = AuthorizationRequest(client_id=found.client_id, redirect_uri="", redirect_uri_given=False, scope="")
    return await step_up.mfa_wanted(p, request) and "mfa" not in session.amr


def _approval(session: BrowserSession, found: PendingDevice) -> DeviceApproval:
    return DeviceApproval(session.sub, session.sid, session.auth_time, session.created_ms, found.scope, session.amr)


async def _park(p: Provider, browser: str, user_code: str | None) -> str:
    """A pending sign-in that comes back to this page (with the code, if it was well formed)."""
    resume = VERIFICATION_PATH + ("?" + urlencode({"user_code": user_code}) if user_code else "")
    return await park_for_page(p, browser, resume)


async def _look_up(p: Provider, user_code: str | None, remote: str) -> PendingDevice | None:
    """The undecided, live device authorization of this code; every look-up is counted first."""
    keys = [f"device:addr:{remote}", "device:all"]
    counted = await p.store.limits.count_attempt(keys, p.settings.login_failure_window)
    limits = (p.settings.login_max_failures, p.settings.device_user_code_max_failures)
    blocked = [ttl for (count, ttl), limit in zip(counted, limits, strict=True) if count > limit]
    if blocked:
        raise SlowDown(max(blocked), "too many wrong user codes", what="wrong codes entered")
    found = await p.store.devices.find_device(secret_digest(user_code)) if user_code else None
    if found is None or found.status != "pending" or p.now() >= found.expires_at:
        return None  # the counted attempt stays: a failure
    await p.store.limits.forgive_attempt(keys)
    return found
