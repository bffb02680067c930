"""aiohttp integration: a middleware that verifies Bearer tokens (RFC 6750 §2.1) and a `require`
decorator for handlers. The verified claims are on the request: `request[CLAIMS]`, or `claims_of(request)`.

    setup(app, verifier, realm="orders")        # app[VERIFIER], app[REALM], the middleware

    @require(scopes=["orders:read"])
    async def list_orders(request: web.Request) -> web.Response:
        sub = claims_of(request)["sub"]

Answers (RFC 6750 §3): no token -> 401 `WWW-Authenticate: Bearer realm="..."` (no error code,
§3.1); a malformed Authorization header -> 400 `error="invalid_request"`; a bad token -> 401
`error="invalid_token"`; a missing scope -> 403 `error="insufficient_scope", scope="..."`; a
missing role -> 403; a verifier unable to decide -> 503. Bodies are JSON `{"error",
"error_description"}` with fixed descriptions: the real reason is logged (debug), never sent.
"""
from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from .claims import require_roles, require_scopes
from .errors import (
    InsufficientRole,
    InsufficientScope,
    InvalidToken,
    VerifierUnavailable,
)
from .verifier import TokenVerifier

log = logging.getLogger("tokensrv.verify")

VERIFIER = web.AppKey("tokensrv_verifier", TokenVerifier)
REALM = web.AppKey("tokensrv_realm", str)
# the verified claims of the request's token (a typed key on aiohttp >= 3.13, a string before)
CLAIMS: Any = web.RequestKey("tokensrv_claims", dict) if hasattr(web, "RequestKey") else "tokensrv_claims"
_BEARER = re.compile(r"Bearer +([A-Za-z0-9._~+/-]+=*)", re.IGNORECASE)  # RFC 6750 §2.1 b64token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application, verifier: TokenVerifier, realm: str = "api") -> None:
    """Install the verifier and `bearer_middleware` on an application not yet started."""
    app[VERIFIER], app[REALM] = verifier, realm
    app.middlewares.append(bearer_middleware)


@web.middleware
async def bearer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the token of every request that carries one (a bad one is refused here); a request
    without one passes through: `require` decides whether its handler needs one."""
    if "Authorization" in request.headers:
        await authenticate(request)
    return await handler(request)


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[Handler], Handler]:
    """Decorate a handler: it runs only for a valid token carrying every scope and role listed."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            await authenticate(request, needed_scopes, needed_roles)
            return await handler(request)
        return wrapper
    return decorate


def claims_of(request: web.Request) -> dict[str, Any]:
    """The verified claims; for handlers behind `require`."""
    claims: dict[str, Any] = request[CLAIMS]
    return claims


async def authenticate(request: web.Request, scopes: Iterable[str] = (), roles: Iterable[str] = ()
                       ) -> dict[str, Any]:
    """The request's claims, verified once per request; else the RFC 6750 answer is raised."""
    realm = request.app.get(REALM, "api")
    try:
        claims = request.get(CLAIMS)
        if claims is None:
            claims = await request.app[VERIFIER].verify(bearer_token(request, realm))
            request[CLAIMS] = claims
        require_scopes(claims, *scopes)
        require_roles(claims, *roles)
    except InvalidToken as exc:
        log.debug("%s %s: %s: %s", request.method, request.path, type(exc).__name__, exc.detail)
        raise error_response(exc, realm) from None
    return claims


def bearer_token(request: web.Request, realm: str) -> str:
    values = request.headers.getall("Authorization", [])
    if not values or (len(values) == 1 and values[0].split(" ", 1)[0].lower() != "bearer"):
        raise _challenge(realm)  # no credentials, or another scheme: for us, no token at all
    match = _BEARER.fullmatch(values[0]) if len(values) == 1 else None
    if match is None:
        raise _json_error(web.HTTPBadRequest, f"Bearer realm={_quote(realm)}, error=\"invalid_request\"",
                          "invalid_request", "the Authorization header is malformed")
    return match.group(1)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _challenge(realm: str) -> web.HTTPException:
    """RFC 6750 §3.1: a request without authentication gets no error code."""
    return _json_error(web.HTTPUnauthorized, f"Bearer realm={_quote(realm)}",
                       "unauthorized", "a bearer access token is required")


def error_response(exc: InvalidToken, realm: str) -> web.HTTPException:
    challenge = f"Bearer realm={_quote(realm)}, error={_quote(exc.error)}"
    if isinstance(exc, InsufficientScope):
        return _json_error(web.HTTPForbidden, f"{challenge}, scope={_quote(' '.join(exc.scopes))}",
                           exc.error, exc.description)
    if isinstance(exc, InsufficientRole):
        return _json_error(web.HTTPForbidden, None, exc.error, exc.description)
    if isinstance(exc, VerifierUnavailable):
        return _json_error(web.HTTPServiceUnavailable, None, exc.error, exc.description, retry_after=1)
    return _json_error(web.HTTPUnauthorized, challenge, "invalid_token", exc.description)


def _json_error(kind: type[web.HTTPException], challenge: str | None, error: str, description: str,
                retry_after: int | None = None) -> web.HTTPException:
    headers = {"Cache-Control": "no-store"}
    if challenge:
        headers["WWW-Authenticate"] = challenge
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = json.dumps({"error": error, "error_description": description})
    return kind(text=body, content_type="application/json", headers=headers)
