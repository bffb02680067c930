"""OIDC Core §5.3 the UserInfo endpoint, protected by a bearer access token (RFC 6750).

The token must be ours, unexpired, not revoked (the same checks as introspection), speak for a
user, and carry `openid`. The claims returned follow its scopes (OIDC Core §5.4).
"""
from __future__ import annotations

from typing import Any

from ..errors import InsufficientScope, InvalidRequest, InvalidToken
from . import Provider
from .introspection import access_token_active
from .tokens import read_own_jwt


class NoToken(InvalidToken):
    """RFC 6750 §3.1: a request without any credentials gets a challenge but no error code."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="tokensrv"'}


def bearer_token(authorization: str | None, form_token: str | None) -> str:
    """The token from the header (§2.1) or the form body (§2.2); exactly one method (§2)."""
    if authorization is not None and form_token is not None:
        raise InvalidRequest("two bearer methods", description="send the access token in one way only")
    if form_token is not None:
        return form_token
    if authorization is None:
        raise NoToken("no access token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NoToken("not a bearer authorization")
    return token.strip()


async def userinfo(p: Provider, token: str) -> dict[str, Any]:
    claims = read_own_jwt(p, token)
    if claims is None or claims["exp"] <= p.now() or not await access_token_active(p, claims):
        raise InvalidToken("invalid, expired or revoked access token")
    if "auth_time" not in claims:
        raise InvalidToken("a client's own token has no user")
    scopes = str(claims.get("scope", "")).split()
    if "openid" not in scopes:
        raise InsufficientScope("no openid scope")
    user = await p.store.get_user(str(claims["sub"]))
    if user is None:
        raise InvalidToken("the user is gone")
    info: dict[str, Any] = {"sub": user.sub}
    if "profile" in scopes:
        info.update(preferred_username=user.username, name=user.username)
    if "email" in scopes and user.email:
        # addresses are entered by an administrator; nobody has proved the user receives mail there
        info.update(email=user.email, email_verified=False)
    return info
