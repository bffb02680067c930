"""What tokensrv keeps in Valkey: the records (store/records.py), and the `Store` Protocol the
protocol code is typed against (store/protocols.py), one attribute per domain.

`store.redis.RedisStore` implements `Store`, a plain class per domain (store/clients.py, users.py,
refresh.py, denylist.py, sessions.py, device.py, backchannel.py, guards.py) over one connection.
"""
from __future__ import annotations

from tokensrv.store.protocols import (
    BackchannelLogouts,
    BrowserSignIn,
    Clients,
    DenyList,
    DeviceAuthorizations,
    Locks,
    Nonces,
    RateLimits,
    RefreshTokens,
    SecondFactors,
    Store,
    Users,
)
from tokensrv.store.records import (
    SECRET_METHODS,
    AuthCode,
    AuthorizationRequest,
    BrowserSession,
    Client,
    CodeReplay,
    Conflict,
    Missing,
    PendingLogin,
    PushedRequest,
    RefreshFamily,
    Reused,
    Revocation,
    Rotated,
    RotateOutcome,
    User,
)

__all__ = [
    "SECRET_METHODS",
    "AuthCode",
    "AuthorizationRequest",
    "BackchannelLogouts",
    "BrowserSession",
    "BrowserSignIn",
    "Client",
    "Clients",
    "CodeReplay",
    "Conflict",
    "DenyList",
    "DeviceAuthorizations",
    "Locks",
    "Missing",
    "Nonces",
    "PendingLogin",
    "PushedRequest",
    "RateLimits",
    "RefreshFamily",
    "RefreshTokens",
    "Reused",
    "Revocation",
    "RotateOutcome",
    "Rotated",
    "SecondFactors",
    "Store",
    "User",
    "Users",
]
