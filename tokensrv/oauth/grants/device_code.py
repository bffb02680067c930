"""RFC 8628 §3.4-§3.5: the device_code grant (the device polls until its user decides).

One store script per poll enforces the interval per device code: a poll sooner than the interval
after the previous one is `slow_down`, and the interval grows by 5 seconds for good. Approved, the
code is spent in the same script: a second poll after the tokens is `invalid_grant`. The tokens are
issued under the approving SSO session's sid, so logging out of it revokes them like any other.
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    DeviceSlowDown,
    ExpiredDeviceCode,
    InvalidGrant,
    UnauthorizedClient,
)
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.metadata import DEVICE_CODE, secret_digest
from tokensrv.oauth.endpoints.revocation import user_is_current
from tokensrv.oauth.own_tokens import Issued, Subject, issue_for_user
from tokensrv.oauth.params import require
from tokensrv.store import Client
from tokensrv.store.device import DeviceApproval

MAX_DEVICE_CODE = 128  # ours are 43 characters; a longer one is not looked up


async def grant(p: Provider, client: Client, params: Mapping[str, str], jkt: str | None = None) -> Issued:
    """`jkt`: the poll's DPoP key (RFC 9449), which the tokens are then bound to."""
    if DEVICE_CODE not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use the device grant")
    device_code = require(params, "device_code")
    if len(device_code) > MAX_DEVICE_CODE:
        raise InvalidGrant("over-long device code")
    polled = await p.store.devices.poll_device(secret_digest(device_code), client.client_id, p.now_ms())
    if not isinstance(polled, DeviceApproval):
        raise _refusal(polled[0])
    user = await p.store.users.get_user(polled.sub)
    _, sid_revoked, _ = await p.store.denylist.denied("", polled.sid, polled.sub)
    if user is None or not user_is_current(user, polled.session_created_ms) or sid_revoked:
        raise InvalidGrant("the approving session ended before the device collected its tokens")
    subject = Subject(user.sub, polled.auth_time, polled.sid, user.roles, polled.amr, user=user)
    return await issue_for_user(p, client, subject, polled.scope, jkt=jkt)


def _refusal(outcome: str) -> Exception:
    if outcome == "pending":
        return AuthorizationPending()
    if outcome == "slow_down":
        return DeviceSlowDown("polled sooner than the interval")
    if outcome == "denied":
        return DeviceAccessDenied("the user denied the device")
    if outcome == "expired":
        return ExpiredDeviceCode("device code expired")
    if outcome == "used":
        return InvalidGrant("device code already used")
    if outcome == "wrong_client":
        return InvalidGrant("device code of another client")
    return InvalidGrant("unknown device code")
