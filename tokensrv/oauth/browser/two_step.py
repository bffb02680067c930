"""The sign-in's second step, after the password: a TOTP or recovery code, or (TOKENSRV_MFA=
required, nothing enrolled yet) enrolment first. No HTTP.

The pending request the login page parked names whose password was right (`PendingLogin.sub`);
this step is bound like the login form: same browser (the CSRF cookie's digest), the form's
double-submit token, the request's few minutes. The session starts only once the code is right.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from tokensrv.oauth import Provider
from tokensrv.oauth.auth_methods import AMR_TOTP
from tokensrv.oauth.browser import second_factor
from tokensrv.oauth.browser.second_factor import WRONG_CODE, Setup
from tokensrv.oauth.browser.signin import (
    LoginExpired,
    SignedIn,
    finish,
    parked_session_stands,
    same_secret,
    sign_in_request,
)
from tokensrv.store import PendingLogin, User

PATH = "/login/two-step"


@dataclass(frozen=True)
class CodeForm:
    """Ask for the code; with `setup`, enrol first (the secret to add to an app)."""
    request_id: str
    csrf_token: str
    pending: PendingLogin
    setup: Setup | None = None
    error: str | None = None
    typed: str = ""  # what was typed in the code field, kept when it was wrong
    typed_recovery: str = ""
    totp: bool = True  # a code is asked for (TOTP enrolled, or being enrolled)
    passkey: bool = False  # the user has a passkey: "Use a passkey" is offered (passkey_signin.py)


async def _waiting(p: Provider, request_id: str | None, browser: str | None,
                   session_secret: str | None) -> tuple[str, PendingLogin, User]:
    csrf, pending = await sign_in_request(p, request_id, browser)
    await parked_session_stands(p, pending, session_secret)
    user = await p.store.users.get_user(pending.sub) if pending.sub else None
    if user is None or user.disabled:
        raise LoginExpired("no password checked for this request, or its user is gone")
    return csrf, pending, user


async def _form(p: Provider, request_id: str, csrf: str, pending: PendingLogin, user: User) -> CodeForm:
    totp = await p.store.mfa.get_second_factor(user.sub) is not None
    passkey = bool(await p.store.passkeys.list_passkeys(user.sub))  # enough alone, even where TOTP is required
    setup = None if totp or passkey else await second_factor.setup_for(p, user)
    return CodeForm(request_id, csrf, pending, setup, totp=totp or setup is not None, passkey=passkey)


async def show(p: Provider, request_id: str | None, browser: str | None, session_secret: str | None) -> CodeForm:
    csrf, pending, user = await _waiting(p, request_id, browser, session_secret)
    return await _form(p, request_id or "", csrf, pending, user)


async def submit(p: Provider, form: Mapping[str, str], browser: str | None, session_secret: str | None,
                 remote: str, agent: str = "") -> CodeForm | SignedIn:
    request_id = form.get("request", "")
    csrf, pending, user = await _waiting(p, request_id, browser, session_secret)
    if not same_secret(form.get("csrf_token"), csrf):
        raise LoginExpired("CSRF token does not match the cookie")
    code, recovery = form.get("code", "")[:64], form.get("recovery", "")[:64]
    shown = await _form(p, request_id, csrf, pending, user)
    if shown.setup is not None:  # enrolment required before this sign-in may finish
        codes = await second_factor.enrol(p, user, code, remote)
        if codes is None:
            return dataclasses.replace(shown, error=WRONG_CODE, typed=code)
        signed = await finish(p, request_id, user, session_secret, AMR_TOTP, (remote, agent))
        return SignedIn(signed.session_secret, signed.session, signed.location, tuple(codes))
    if await second_factor.verify(p, user.sub, code, recovery, remote) is None:
        error = "That recovery code is not right or was used already." if recovery.strip() else WRONG_CODE
        return dataclasses.replace(shown, error=error, typed=code, typed_recovery=recovery)
    return await finish(p, request_id, user, session_secret, AMR_TOTP, (remote, agent))
