"""Signing in with a passkey (no HTTP): alone from the login page (no username typed: the
discoverable credential names its user; user verification required), or as the second step
after a password (the user's own passkeys only; UV preferred, the password being a factor).

Which of the two is decided by the pending request, not by the browser: once a password was
right for it (`PendingLogin.sub`), only that user's passkey finishes it; a step-up confirming the
signed-in user (`PendingLogin.confirm`) takes only that user's. The request's CSRF
binding is the login form's (oauth/browser/signin.py): same browser, echoed token.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensrv.oauth import Provider
from tokensrv.oauth.browser import passkeys
from tokensrv.oauth.browser.signin import (
    LoginExpired,
    SignedIn,
    finish,
    parked_session_stands,
    same_secret,
    sign_in_request,
)
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.store import PendingLogin
from tokensrv.store.passkeys import Challenge


async def _pending(p: Provider, body: Mapping[str, Any], browser: str | None,
                   session_secret: str | None) -> tuple[str, str, PendingLogin]:
    request_id = body.get("request")
    request_id = request_id if isinstance(request_id, str) else ""
    csrf, pending = await sign_in_request(p, request_id, browser)
    await parked_session_stands(p, pending, session_secret)
    token = body.get("csrf_token")
    if not same_secret(token if isinstance(token, str) else None, csrf):
        raise LoginExpired("CSRF token does not match the cookie")
    return request_id, csrf, pending


def _ceremony(pending: PendingLogin) -> str:
    return passkeys.SECOND if pending.sub else passkeys.SIGNIN


def _owner(pending: PendingLogin) -> str:
    """Whose passkey alone may finish it: after a password, that user's; for a step-up's "confirm
    it's you" (prompt=login, max_age), the signed-in user's (UV still required: the only factor)."""
    return pending.sub or pending.confirm


async def options(p: Provider, body: Mapping[str, Any], browser: str | None, session_secret: str | None) -> str:
    request_id, csrf, pending = await _pending(p, body, browser, session_secret)
    return await passkeys.authentication_options(p, csrf, _ceremony(pending), _owner(pending), request_id)


async def sign_in(p: Provider, body: Mapping[str, Any], browser: str | None, session_secret: str | None,
                  remote: str, agent: str = "") -> SignedIn:
    request_id, csrf, pending = await _pending(p, body, browser, session_secret)
    expected = Challenge(_ceremony(pending), secret_digest(csrf), _owner(pending), request_id)
    verified = await passkeys.authenticate(p, body, expected, remote)
    amr = passkeys.amr_of(verified.key, after_password=bool(pending.sub))
    return await finish(p, request_id, verified.user, session_secret, amr, (remote, agent))
