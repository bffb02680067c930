"""What happened, for operators: one call per event bumps its metric and writes its audit line.

The protocol code (oauth/, store/) calls these with ids only. A secret or password never reaches
this module; `token_issued` is handed the token response and the access token's claims, and logs
only whether a refresh or ID token came with it, and the `sub` and `jti` claims.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokensrv.observability.logs import audit
from tokensrv.observability.metrics import server_metrics


def token_issued(grant_type: str, client_id: str, public: bool, response: Mapping[str, Any],
                 claims: Mapping[str, Any]) -> None:
    """`claims`: the access token's, of which `sub` and `jti` alone are logged."""
    server_metrics().issued(grant_type, public).inc()
    audit("token.issued", grant_type=grant_type, client_id=client_id, sub=claims.get("sub"),
          jti=claims.get("jti"), refresh=("refresh_token" in response), id_token=("id_token" in response))


def refresh_reused(family_id: str, client_id: str) -> None:
    server_metrics().refresh_reuse.inc()
    audit("refresh.reuse_detected", family=family_id, client_id=client_id)


def revoked(entries: Iterable[tuple[str, str]]) -> None:
    """Deny-list entries written, as (kind, id): jti, sid, sub, kid or family."""
    for kind, value in entries:
        server_metrics().revocations.labels(kind).inc()
        audit("revoked", kind=kind, id=value)


def login_failed(remote: str) -> None:
    """Usernames are personal data (and often a mistyped password): only the address is logged."""
    server_metrics().login_failures.inc()
    audit("login.failed", remote=remote)


def logged_in(sub: str, remote: str) -> None:
    audit("login.succeeded", sub=sub, remote=remote)


def login_throttled(remote: str) -> None:
    audit("login.throttled", remote=remote)


def client_auth_throttled(client_id: str, remote: str) -> None:
    """A client id and address reached the failed-authentication limit (once per window)."""
    audit("client.throttled", client_id=client_id, remote=remote)


def backchannel_logout(outcome: str, client_id: str, sid: str, detail: str = "") -> None:
    """A logout token's fate (oauth/backchannel.py): the ids and what happened, never the token."""
    server_metrics().backchannel_logouts.labels(outcome).inc()
    audit("backchannel_logout." + outcome, client_id=client_id, sid=sid, detail=detail or None)


# ---- second factors (oauth/browser/second_factor.py): ids only, never a secret, code or recovery code ----

def second_factor_passed(sub: str, remote: str, method: str) -> None:
    """`method`: "otp" (a TOTP code) or "recovery" (a one-time recovery code, now spent)."""
    server_metrics().second_factor.labels(method).inc()
    audit("mfa.recovery_code_used" if method == "recovery" else "mfa.verified", sub=sub, remote=remote)


def second_factor_failed(sub: str, remote: str) -> None:
    server_metrics().second_factor.labels("failed").inc()
    audit("mfa.failed", sub=sub, remote=remote)


def second_factor_throttled(sub: str, remote: str) -> None:
    server_metrics().second_factor.labels("throttled").inc()
    audit("mfa.throttled", sub=sub, remote=remote)


def second_factor_enrolled(sub: str, remote: str) -> None:
    server_metrics().second_factor.labels("enrolled").inc()
    audit("mfa.enrolled", sub=sub, remote=remote)


def second_factor_removed(sub: str, remote: str) -> None:
    """The user removed it from the account page."""
    server_metrics().second_factor.labels("removed").inc()
    audit("mfa.removed", sub=sub, remote=remote)


def second_factor_reset(sub: str) -> None:
    """An operator removed it (`tokensrv user mfa reset`): a lost phone."""
    audit("mfa.reset", sub=sub)


# ---- the account page (oauth/browser/account/): ids only, never a password or a session's secret ----

def account_changed(action: str, sub: str, remote: str, **ids: str) -> None:
    """`action`: "password_changed", "session_ended", "other_sessions_ended", "device_disconnected"
    or "reauthenticated"; `ids` name what it ended (a sid, a client_id)."""
    audit("account." + action, sub=sub, remote=remote, **ids)


def consent_changed(action: str, sub: str, remote: str, **ids: str) -> None:
    """`action`: "granted", "denied" (the consent page), "withdrawn" (the account page; `remote`
    empty: an operator's `tokensrv user consents --revoke`); `ids` name the client."""
    audit("consent." + action, sub=sub, remote=remote or None, **ids)


# ---- passkeys (oauth/browser/passkeys.py): ids only, never a key, signature or challenge ----

def passkey_registered(sub: str, remote: str) -> None:
    server_metrics().second_factor.labels("passkey_registered").inc()
    audit("passkey.registered", sub=sub, remote=remote)


def passkey_removed(sub: str, remote: str) -> None:
    server_metrics().second_factor.labels("passkey_removed").inc()
    audit("passkey.removed", sub=sub, remote=remote)


def passkey_used(sub: str, remote: str) -> None:
    server_metrics().second_factor.labels("passkey").inc()
    audit("passkey.used", sub=sub, remote=remote)


def passkey_failed(sub: str, remote: str) -> None:
    """An assertion or registration that did not check out (`sub` empty: no user known yet)."""
    server_metrics().second_factor.labels("passkey_failed").inc()
    audit("passkey.failed", sub=sub or None, remote=remote)


def passkey_counter_regressed(sub: str, credential_id: str, remote: str) -> None:
    """WebAuthn §6.1.1: the signature counter did not go up, a sign of a cloned authenticator."""
    server_metrics().second_factor.labels("passkey_counter_regressed").inc()
    audit("passkey.counter_regressed", sub=sub, credential=credential_id, remote=remote)
