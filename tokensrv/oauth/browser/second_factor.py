"""TOTP (RFC 6238) as a second factor: enrolment, the check after the password, removal. No HTTP.

A code counts for its 30-second time-step and one step either side (clock drift, RFC 6238 §5.2),
and once only: store.mfa.use_step records the last step used per user, atomically, so a code
seen over a shoulder or replayed by a phishing proxy is refused within its window. Wrong codes are
counted like wrong passwords (oauth/credentials.py: per user and per address, then 429).

Recovery codes: ten, 50 random bits each, shown once at enrolment and stored as SHA-256 digests
(high-entropy values: a slow hash would add nothing); each one signs in once instead of a code.
The secret and the codes are never logged, nor put in a token or an error (events.py logs ids).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp

from tokensrv.errors import InvalidRequest, SlowDown
from tokensrv.oauth import Provider
from tokensrv.oauth.credentials import attempt_passed, count_attempt, limit_keys
from tokensrv.observability import events
from tokensrv.store import User

STEP_SECONDS = 30  # RFC 6238 §5.2's recommended time-step; what every authenticator app uses
DRIFT_STEPS = 1  # a code of the step before or after is accepted too
SETUP_TTL = 900  # seconds a secret shown at enrolment waits for its first code
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
WRONG_CODE = "That code is not right. Enter the 6-digit code your authenticator app shows now."


@dataclass(frozen=True)
class Setup:
    """A secret waiting for its first code: what the enrolment page shows."""
    secret: str
    uri: str  # otpauth:// (the QR code encodes it)

    @property
    def grouped(self) -> str:
        """The secret in groups of four, for typing it into an app by hand."""
        return " ".join(self.secret[i:i + 4] for i in range(0, len(self.secret), 4))


def offered(p: Provider) -> bool:
    return p.settings.mfa != "off"


async def needed(p: Provider, user: User) -> bool:
    """Whether a sign-in by password must go on to the second step (a code, or enrolment first)."""
    if not offered(p):
        return False
    return p.settings.mfa == "required" or await has_factor(p, user.sub)


async def has_factor(p: Provider, sub: str) -> bool:
    """A TOTP enrolment or a passkey: either is a second factor, and enough for TOKENSRV_MFA=required."""
    return await p.store.mfa.get_second_factor(sub) is not None or bool(await p.store.passkeys.list_passkeys(sub))


async def setup_for(p: Provider, user: User) -> Setup:
    """The secret being enrolled (a new one if none waits), its lifetime renewed."""
    if not offered(p):
        raise InvalidRequest("two-step verification is off", description="two-step verification is not offered")
    secret = await p.store.mfa.get_setup(user.sub) or pyotp.random_base32()  # 160 bits (RFC 4226 §4)
    await p.store.mfa.put_setup(user.sub, secret, SETUP_TTL)
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.username, issuer_name=p.settings.display_name)
    return Setup(secret, uri)


def _matching_step(secret: str, code: str, now: int) -> int | None:
    """The time-step whose code this is, within the drift allowed; None if none."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp, current = pyotp.TOTP(secret, interval=STEP_SECONDS), now // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    def part() -> str:
        return "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
    return [f"{part()}-{part()}" for _ in range(RECOVERY_CODES)]


def recovery_digest(code: str) -> str:
    """Typed with or without the dash, spaces or capitals: the same code."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


async def _counted(p: Provider, sub: str, remote: str) -> list[str]:
    """Count this attempt (the login limit's mechanism and bounds); 429 past them."""
    keys = limit_keys("mfa", sub, remote)
    wait = await count_attempt(p, keys)
    if wait is not None:
        events.second_factor_throttled(sub, remote)
        raise SlowDown(wait, "too many wrong second-factor codes", what="wrong codes entered")
    return keys


async def verify(p: Provider, sub: str, code: str, recovery: str, remote: str) -> str | None:
    """Which factor passed ("otp", or "recovery" for a recovery code, tried instead when given),
    if it is right and unused; None otherwise. Counted against the guess limit first."""
    keys = await _counted(p, sub, remote)
    method = await _judge(p, sub, code, recovery)
    if method is None:
        events.second_factor_failed(sub, remote)
        return None  # the counted attempt stays: a failure
    await attempt_passed(p, keys)
    events.second_factor_passed(sub, remote, method)
    return method


async def _judge(p: Provider, sub: str, code: str, recovery: str) -> str | None:
    if recovery.strip():
        return "recovery" if await p.store.mfa.use_recovery_code(sub, recovery_digest(recovery)) else None
    factor = await p.store.mfa.get_second_factor(sub)
    step = _matching_step(factor.secret, code, p.now()) if factor is not None else None
    return "otp" if step is not None and await p.store.mfa.use_step(sub, step) else None


async def enrol(p: Provider, user: User, code: str, remote: str) -> list[str] | None:
    """Confirm the secret shown with a first code: the recovery codes (shown once), or None."""
    keys = await _counted(p, user.sub, remote)
    secret = await p.store.mfa.get_setup(user.sub)
    step = _matching_step(secret, code, p.now()) if secret is not None else None
    if secret is None or step is None:
        events.second_factor_failed(user.sub, remote)
        return None
    codes = new_recovery_codes()
    await p.store.mfa.enrol(user.sub, secret, step, [recovery_digest(c) for c in codes], p.now())
    await attempt_passed(p, keys)
    events.second_factor_enrolled(user.sub, remote)
    return codes


async def remove(p: Provider, sub: str, remote: str) -> bool:
    removed = await p.store.mfa.remove_second_factor(sub)
    if removed:
        events.second_factor_removed(sub, remote)
    return removed
