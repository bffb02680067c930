"""The cookies tokensrv sets, all HttpOnly. On an https issuer they are Secure and prefixed
(`__Host-`: host-only, path /, so no sibling subdomain can plant one; `__Secure-` where the path
must be narrower)."""
from __future__ import annotations

import secrets

from aiohttp import web

from tokensrv.config import Settings
from tokensrv.server.appkeys import SETTINGS

REFRESH_PATH = "/oauth2/token"
MAX_VALUE = 128  # longer than anything we set: ignored


def _secure(request: web.Request) -> bool:
    return request.app[SETTINGS].secure_cookies


def session_name(settings: Settings) -> str:
    return ("__Host-" if settings.secure_cookies else "") + "tokensrv_session"


def csrf_name(settings: Settings) -> str:
    return ("__Host-" if settings.secure_cookies else "") + "tokensrv_csrf"


def refresh_name(settings: Settings) -> str:
    return ("__Secure-" if settings.secure_cookies else "") + "tokensrv_refresh"


def _read(request: web.Request, name: str) -> str | None:
    if "Cookie" not in request.headers:  # most API calls: no need to build an empty cookie jar
        return None
    value = request.cookies.get(name)
    return value if value and len(value) <= MAX_VALUE else None


def session_secret(request: web.Request) -> str | None:
    return _read(request, session_name(request.app[SETTINGS]))


def csrf_token(request: web.Request) -> str | None:
    return _read(request, csrf_name(request.app[SETTINGS]))


def refresh_token(request: web.Request) -> str | None:
    return _read(request, refresh_name(request.app[SETTINGS]))


def browser_csrf(request: web.Request) -> str:
    """This browser's CSRF value: the cookie it has, or a new one (set it with set_csrf)."""
    return csrf_token(request) or secrets.token_urlsafe(32)


def set_csrf(request: web.Request, response: web.StreamResponse, value: str) -> None:
    # Lax: it must come along when the client's redirect brings the browser to /oauth2/authorize
    response.set_cookie(csrf_name(request.app[SETTINGS]), value, path="/", httponly=True,
                        secure=_secure(request), samesite="Lax")


def set_session(request: web.Request, response: web.StreamResponse, value: str, max_age: int) -> None:
    # Lax: a top-level navigation from an application to /oauth2/authorize must carry it (SSO)
    response.set_cookie(session_name(request.app[SETTINGS]), value, path="/", httponly=True,
                        secure=_secure(request), samesite="Lax", max_age=max_age)


def set_refresh(request: web.Request, response: web.StreamResponse, value: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(refresh_name(settings), value, path=REFRESH_PATH, httponly=True,
                        secure=_secure(request), samesite="Strict", max_age=settings.refresh_token_ttl)


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    settings = request.app[SETTINGS]
    response.del_cookie(session_name(settings), path="/", secure=_secure(request), httponly=True,
                        samesite="Lax")
    response.del_cookie(refresh_name(settings), path=REFRESH_PATH, secure=_secure(request),
                        httponly=True, samesite="Strict")
