"""OIDC Back-Channel Logout 1.0 §2.6: the checks of a logout token's claims, after its signature.

What tells a logout token apart from tokensrv's other JWTs, whatever their signature: its `typ`
(logout+jwt, checked with the header), the back-channel `events` member, and no `nonce` (an ID
token's). An access token or ID token presented as a logout token fails all three.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .claims import DEFAULT_MAX_TOKEN_LIFETIME, check_issuer_audience, check_times
from .errors import ExpiredToken, InvalidClaims

LOGOUT_TOKEN_TYPE = "logout+jwt"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
DEFAULT_MAX_AGE = 300.0  # seconds: tokensrv signs a logout token when it sends it, valid for 120


def check_logout_claims(claims: Mapping[str, Any], issuer: str, audience: str, now: float, leeway: float,
                        max_age: float, max_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME) -> None:
    """Raises InvalidClaims (or a subclass) unless these are a logout token's claims for `audience`."""
    check_issuer_audience(claims, issuer, audience)
    check_times(claims, now, leeway, max_lifetime)
    if type(claims.get("jti")) is not str or not claims["jti"]:
        raise InvalidClaims("jti is missing or not a string")
    events = claims.get("events")
    if type(events) is not dict or type(events.get(EVENT)) is not dict:
        raise InvalidClaims("events does not hold the back-channel logout event")
    if "nonce" in claims:
        raise InvalidClaims("a logout token has no nonce")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not (type(sub) is str and sub) and not (type(sid) is str and sid):
        raise InvalidClaims("neither sub nor sid")
    for name in ("sub", "sid"):
        if name in claims and type(claims[name]) is not str:
            raise InvalidClaims(f"{name} is not a string")
    if claims["iat"] < now - max_age - leeway:
        raise ExpiredToken("issued too long ago")
