"""HTML pages: rendering, the security headers every page and redirect carries, and errors as pages.

The JSON error middleware (app.py) is for the API; a browser following a bad link deserves a page
that says what happened, with the same rule: a fixed public description, the detail only logged.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from redis.exceptions import RedisError

from tokensrv import errors
from tokensrv.oauth.params import single_valued
from tokensrv.server.appkeys import NO_STORE, SETTINGS
from tokensrv.server.limits import client_gone
from tokensrv.server.request import form_pairs

log = logging.getLogger("tokensrv.web")

# form-action is left out on purpose: Chromium applies it to the redirect that follows a form
# post, and the login form's answer is a redirect to the client's (registered) redirect URI.
# img-src https: for a client's logo (registered https only; the <img> sends no referrer)
# script-src and connect-src 'self': the passkey script (static/passkeys.js) and its posts, ours alone
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' https:; "
       "base-uri 'none'; frame-ancestors 'none'")
# same-origin, not no-referrer: other sites still learn nothing of our URLs (request ids), but under
# no-referrer a browser sends `Origin: null` with our own form posts (Fetch §3.2), which
# same_origin.py must refuse
SECURITY_HEADERS = {
    **NO_STORE, "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
}
PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> web.Response:
    context = {"display_name": request.app[SETTINGS].display_name, **context}
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(headers or {})
    return response


def redirect(location: str) -> web.Response:
    """303: after a form post the browser must GET the next page (RFC 9110 §15.4.4)."""
    return web.Response(status=303, headers={"Location": location})


async def params_of(request: web.Request) -> dict[str, str]:
    """Query parameters for GET, the urlencoded body for POST; each at most once (RFC 6749 §3.1)."""
    return single_valued(await pairs_of(request))


async def pairs_of(request: web.Request) -> list[tuple[str, object]]:
    """The parameters as sent, repeats included: query for GET, the urlencoded body for POST."""
    if request.method != "POST":
        return list(request.query.items())
    return await form_pairs(request, "the form")


def error_page(request: web.Request, exc: errors.OAuthError) -> web.Response:
    if isinstance(exc, errors.SlowDown):
        minutes = max(1, (int(exc.headers["Retry-After"]) + 59) // 60)
        message = f"Too many {exc.what}. Please try again in {minutes} minute(s)."
    else:
        message = exc.description[:1].upper() + exc.description[1:]
        message += "" if message.endswith(".") else "."
    return render(request, "error.html", {"message": message, "error": exc.error},
                  status=exc.status, headers=dict(exc.headers))


def page(handler: PageHandler) -> PageHandler:
    """Errors become error.html (never a traceback); every answer gets the security headers."""
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except errors.OAuthError as exc:
            log.info("%s %s: %s (%s)", request.method, request.path, exc.error, exc.detail)
            response = error_page(request, exc)
        except (RedisError, OSError) as exc:  # fail closed: no sign-in without the store
            if client_gone(request, exc):
                raise  # the client's doing, not the store's: http_limits.body_middleware logs it
            log.warning("%s %s: store unreachable: %s", request.method, request.path, type(exc).__name__)
            response = error_page(request, errors.TemporarilyUnavailable("store unreachable"))
        except (web.HTTPException, web.RequestPayloadError):  # the latter: http_limits.body_middleware answers it
            raise
        except Exception:
            log.exception("%s %s: unhandled error", request.method, request.path)
            response = error_page(request, errors.OAuthError("unhandled"))
        response.headers.update(SECURITY_HEADERS)
        return response
    return wrapper
