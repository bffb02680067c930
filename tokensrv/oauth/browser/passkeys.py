"""Passkeys (WebAuthn Level 2/3, through py_webauthn): the ceremonies' options and the checks of
what the browser sends back. No HTTP: server/web/passkeys.py hands in parsed JSON bodies.

The relying party is the issuer: its host is the RP ID and its origin the only origin accepted
(so a passkey registered for https://id.example.com works on no other site, phishing proxies
included). Each ceremony's challenge is stored by its digest with what it was for (register,
sign-in, second factor, confirmation), the browser it was given to (the CSRF cookie's digest),
the user if known and the sign-in request; it is taken once (GETDEL) when the answer comes back,
so an assertion replayed, sent from another browser or for another ceremony is refused.

Sign counters (WebAuthn §6.1.1): compared and set in one Lua call (store/lua/passkey_use.lua); a
counter that does not go up while non-zero is refused and audited (a cloned authenticator).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import parse_authentication_credential_json
from webauthn.helpers.parse_registration_credential_json import parse_registration_credential_json
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.browser.signin import same_secret
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.oauth.clients.origins import origin_of
from tokensrv.observability import events
from tokensrv.store import User
from tokensrv.store.passkeys import Challenge, Passkey

REGISTER, SIGNIN, SECOND, CONFIRM = "register", "signin", "second", "confirm"
CHALLENGE_TTL = 300  # seconds: the ceremony's timeout below, and a little
TIMEOUT_MS = 240_000
MAX_NAME = 64
MAX_PASSKEYS = 20  # per user: every sign-in lists them (allowCredentials), and the account page shows them all
REFUSED = "That passkey could not be used. Try again, or sign in another way."
# what a browser's errors and py_webauthn raise on a malformed or wrong credential
_MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)


class PasskeyRefused(InvalidRequest):
    description = REFUSED


@dataclass(frozen=True)
class Verified:
    """An assertion that passed: whose, which passkey, and whether the user was verified (UV)."""
    user: User
    key: Passkey
    user_verified: bool


def rp_id(p: Provider) -> str:
    return urlsplit(p.settings.issuer).hostname or ""


def origin(p: Provider) -> str:
    """The one origin a ceremony may come from: the issuer's (scheme, host, port)."""
    return origin_of(p.settings.issuer) or ""


def amr_of(key: Passkey, after_password: bool) -> tuple[str, ...]:
    """RFC 8176: `hwk` for a key bound to its authenticator, `swk` for a synced passkey (its key
    lives in software, copied between devices); with UV (required alone) the passkey is itself two
    factors, possession and the user's PIN or biometric: `user` and `mfa`."""
    kind = "swk" if key.synced else "hwk"
    return ("pwd", kind, "mfa") if after_password else (kind, "user", "mfa")


def default_name(transports: tuple[str, ...], synced: bool) -> str:
    if synced:
        return "Synced passkey"
    if "internal" in transports:
        return "This device's passkey"
    return "Phone passkey" if "hybrid" in transports else "Security key"


def clean_name(name: object) -> str:
    """A name as the user typed it, without control characters, at most MAX_NAME long."""
    text = name if isinstance(name, str) else ""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()[:MAX_NAME]


def _offered(p: Provider) -> None:
    """Passkeys are second factors too: TOKENSRV_MFA=off (passwords only) turns them off."""
    if p.settings.mfa == "off":
        raise InvalidRequest("passkeys are off (TOKENSRV_MFA=off)", description="passkeys are not offered")


def _descriptors(keys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(k.credential_id)) for k in keys]


async def registration_options(p: Provider, user: User, browser: str) -> str:
    """The options for navigator.credentials.create(): a discoverable credential (resident key
    required: it signs in without a username), UV preferred, none of the user's existing ones."""
    _offered(p)
    options = generate_registration_options(
        rp_id=rp_id(p), rp_name=p.settings.display_name, user_id=user.sub.encode(), user_name=user.username,
        user_display_name=user.username, timeout=TIMEOUT_MS,
        exclude_credentials=_descriptors(await p.store.passkeys.list_passkeys(user.sub)),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED))
    await p.store.passkeys.put_challenge(options.challenge, Challenge(REGISTER, secret_digest(browser), user.sub),
                                         CHALLENGE_TTL)
    return options_to_json(options)


async def authentication_options(p: Provider, browser: str, ceremony: str, sub: str = "",
                                 request_id: str = "") -> str:
    """The options for navigator.credentials.get(): any discoverable passkey of this site for a
    sign-in (UV required: the passkey is the only factor), the user's own otherwise."""
    _offered(p)
    keys = await p.store.passkeys.list_passkeys(sub) if sub else []
    options = generate_authentication_options(
        rp_id=rp_id(p), timeout=TIMEOUT_MS, allow_credentials=_descriptors(keys),
        user_verification=UserVerificationRequirement.REQUIRED if ceremony == SIGNIN
        else UserVerificationRequirement.PREFERRED)
    await p.store.passkeys.put_challenge(
        options.challenge, Challenge(ceremony, secret_digest(browser), sub, request_id), CHALLENGE_TTL)
    return options_to_json(options)


async def _challenge(p: Provider, client_data_json: bytes, expected: Challenge) -> bytes:
    """The challenge the browser signed, if it is one we gave for this very ceremony; taken."""
    challenge = parse_client_data_json(client_data_json).challenge
    record = await p.store.passkeys.take_challenge(challenge)
    if record is None or record.ceremony != expected.ceremony or not same_secret(record.browser, expected.browser) \
            or record.sub != expected.sub or record.request_id != expected.request_id:
        raise PasskeyRefused("unknown, used, expired or foreign challenge")
    return challenge


async def register(p: Provider, user: User, body: Mapping[str, Any], browser: str, remote: str) -> Passkey:
    """Check the new credential (navigator.credentials.create()'s answer) and keep it."""
    if len(await p.store.passkeys.list_passkeys(user.sub)) >= MAX_PASSKEYS:
        raise PasskeyRefused("too many passkeys",
                             description=f"you have {MAX_PASSKEYS} passkeys: remove one before you add another")
    try:
        credential = parse_registration_credential_json(body.get("credential"))  # type: ignore[arg-type]
        expected = Challenge(REGISTER, secret_digest(browser), user.sub)
        challenge = await _challenge(p, credential.response.client_data_json, expected)
        checked = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(p),
            expected_origin=origin(p), require_user_verification=False)
    except (PasskeyRefused, *_MALFORMED) as exc:
        events.passkey_failed(user.sub, remote)
        raise PasskeyRefused(f"registration refused: {type(exc).__name__}: {str(exc)[:200]}") from None
    transports = tuple(str(getattr(t, "value", t)) for t in (credential.response.transports or ()))[:8]
    synced = checked.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    key = Passkey(bytes_to_base64url(checked.credential_id), bytes_to_base64url(checked.credential_public_key),
                  clean_name(body.get("name")) or default_name(transports, synced), p.now(), transports, synced,
                  checked.sign_count)
    if not await p.store.passkeys.add_passkey(user.sub, key):
        events.passkey_failed(user.sub, remote)
        raise PasskeyRefused("credential id registered already", description="this passkey is registered already")
    events.passkey_registered(user.sub, remote)
    return key


async def authenticate(p: Provider, body: Mapping[str, Any], expected: Challenge, remote: str) -> Verified:
    """Check an assertion (navigator.credentials.get()'s answer) against the challenge `expected`
    describes; for a sign-in (no user known) the credential names its owner."""
    try:
        credential = parse_authentication_credential_json(body.get("credential"))  # type: ignore[arg-type]
        challenge = await _challenge(p, credential.response.client_data_json, expected)
        sub, key = await _owner(p, credential.raw_id, credential.response.user_handle, expected.sub)
        checked = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(p),
            expected_origin=origin(p), credential_public_key=base64url_to_bytes(key.public_key),
            credential_current_sign_count=0,  # compared (atomically) by the store below
            require_user_verification=expected.ceremony == SIGNIN)
    except (PasskeyRefused, *_MALFORMED) as exc:  # audited whatever the reason: replays included
        events.passkey_failed(expected.sub, remote)
        raise PasskeyRefused(f"assertion refused: {type(exc).__name__}: {str(exc)[:200]}") from None
    user = await p.store.users.get_user(sub)
    if user is None or user.disabled:
        raise PasskeyRefused("the passkey's user is disabled or gone")
    await _count(p, sub, key, checked.new_sign_count, remote)
    events.passkey_used(sub, remote)
    return Verified(user, key, checked.user_verified)


async def _owner(p: Provider, raw_id: bytes, user_handle: bytes | None, expected_sub: str) -> tuple[str, Passkey]:
    owned = await p.store.passkeys.owner_of(bytes_to_base64url(raw_id))
    if owned is None:
        raise ValueError("no such passkey (never registered, or removed)")
    sub, key = owned
    if (expected_sub and sub != expected_sub) or (user_handle is not None and user_handle != sub.encode()):
        raise ValueError("the passkey is another user's")
    return sub, key


async def _count(p: Provider, sub: str, key: Passkey, sign_count: int, remote: str) -> None:
    outcome = await p.store.passkeys.use_passkey(sub, key.credential_id, sign_count, p.now())
    if outcome == 0:
        events.passkey_counter_regressed(sub, key.credential_id, remote)
        raise PasskeyRefused("the signature counter did not go up")
    if outcome < 0:
        raise PasskeyRefused("the passkey was removed meanwhile")


async def remove(p: Provider, sub: str, credential_id: str, remote: str) -> bool:
    removed = await p.store.passkeys.remove_passkey(sub, credential_id)
    if removed:
        events.passkey_removed(sub, remote)
    return removed
