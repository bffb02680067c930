"""RFC 9068 §4 checks of a JWT access token's header and claims, and scope and role helpers.

Every claim we read has its type checked: a token whose `exp` is a string or whose `aud` is a
number is refused rather than interpreted.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from .errors import (
    ExpiredToken,
    InsufficientRole,
    InsufficientScope,
    InvalidClaims,
    InvalidSignature,
    MalformedToken,
    NotYetValid,
)
from .jws import FORBIDDEN_HEADERS

ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1
_REQUIRED_STRINGS = ("sub", "client_id", "jti")  # RFC 9068 §2.2, with iss aud exp iat
_OPTIONAL_STRINGS = ("scope", "sid")
_OPTIONAL_NUMBERS = ("nbf", "auth_time")
# The longest `exp - iat` of a token we accept: tokensrv signs nothing longer-lived (its config
# caps TOKENSRV_ACCESS_TOKEN_TTL and TOKENSRV_ID_TOKEN_TTL at this; logout tokens live 120 s)
DEFAULT_MAX_TOKEN_LIFETIME = 86400


def check_header(header: Mapping[str, Any], allowed: frozenset[str], typ: str | None) -> tuple[str, str]:
    """(alg, kid) of a header we accept. The algorithm comes from the allow-list, never the token."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise InvalidSignature(f"algorithm {str(alg)[:16]!r} is not allowed")
    forbidden = FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise MalformedToken(f"header parameter {min(forbidden)} is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise MalformedToken("no kid in the header")
    if typ is not None and not _is_type(header.get("typ"), typ):
        raise InvalidClaims(f"typ is not {typ}")
    return alg, kid


def _is_type(value: object, expected: str) -> bool:
    """Media types compare case-insensitively, with or without `application/` (RFC 7515 §4.1.9)."""
    if not isinstance(value, str):
        return False
    lowered = value.lower()
    return lowered in (expected, "application/" + expected)


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: not a bool, not NaN or infinite (the time checks would be meaningless)."""
    return type(value) is int or (type(value) is float and math.isfinite(value))


def check_claims(claims: Mapping[str, Any], issuer: str, audience: str, now: float, leeway: float,
                 max_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME) -> None:
    check_issuer_audience(claims, issuer, audience)
    for name in _REQUIRED_STRINGS:
        if type(claims.get(name)) is not str or not claims[name]:
            raise InvalidClaims(f"{name} is missing or not a string")
    for name in _OPTIONAL_STRINGS:
        if type(claims.get(name, "")) is not str:
            raise InvalidClaims(f"{name} is not a string")
    for name in _OPTIONAL_NUMBERS:
        if name in claims and not is_number(claims[name]):
            raise InvalidClaims(f"{name} is not a number")
    if "roles" in claims and not _strings(claims["roles"]):
        raise InvalidClaims("roles is not a list of strings")
    check_times(claims, now, leeway, max_lifetime)


def check_issuer_audience(claims: Mapping[str, Any], issuer: str, audience: str) -> None:
    if claims.get("iss") != issuer:
        raise InvalidClaims("wrong issuer")
    aud = claims.get("aud")
    if aud != audience and not (_strings(aud) and audience in aud):
        raise InvalidClaims("wrong audience")


def check_times(claims: Mapping[str, Any], now: float, leeway: float,
                max_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME) -> None:
    """exp and iat present and numbers, and plausible: issued after 1970, expiring after it was
    issued and within `max_lifetime` of it (the issuer signs nothing longer-lived: a token that
    says otherwise was not made by it, whatever signed it); not expired, not issued (nor valid
    only) in the future."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not is_number(exp) or not is_number(iat):
        raise InvalidClaims("exp or iat is missing or not a number")
    if iat < 0:
        raise InvalidClaims("iat is before 1970")
    if not 0 <= exp - iat <= max_lifetime:
        raise InvalidClaims(f"exp - iat is not between 0 and {max_lifetime:g} seconds")
    if "nbf" in claims and not is_number(claims["nbf"]):
        raise InvalidClaims("nbf is not a number")
    if now >= exp + leeway:
        raise ExpiredToken("expired")
    if iat > now + leeway:
        raise NotYetValid("issued in the future")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise NotYetValid("not before its nbf")


def _strings(value: object) -> TypeGuard[list[str]]:
    return type(value) is list and all(type(v) is str for v in value)


# ---- scopes (RFC 6749 §3.3: space-separated) and roles ----

def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


def has_scope(claims: Mapping[str, Any], *scopes: str) -> bool:
    """Whether the token carries every one of `scopes`."""
    return scopes_of(claims).issuperset(scopes)


def require_scopes(claims: Mapping[str, Any], *scopes: str) -> None:
    if not has_scope(claims, *scopes):
        raise InsufficientScope(scopes)


def roles_of(claims: Mapping[str, Any]) -> frozenset[str]:
    roles = claims.get("roles")
    return frozenset(roles) if _strings(roles) else frozenset()


def has_role(claims: Mapping[str, Any], *roles: str) -> bool:
    """Whether the token's subject has every one of `roles`."""
    return roles_of(claims).issuperset(roles)


def require_roles(claims: Mapping[str, Any], *roles: str) -> None:
    if not has_role(claims, *roles):
        raise InsufficientRole(roles)
