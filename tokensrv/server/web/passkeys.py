"""Passkey endpoints for the pages' script (static/passkeys.js): JSON in, JSON out. Thin: each
checks where the post comes from (same_origin.py) and the media type, parses the body within
bounds, then one oauth/ call; errors are the app's RFC 6749 JSON answers (server/app.py), 400
for anything malformed, never a 500. The protocol is in oauth/browser/passkey_*.py."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tokensrv.errors import InvalidRequest
from tokensrv.oauth.browser import passkey_account, passkey_signin
from tokensrv.server.appkeys import NO_STORE
from tokensrv.server.request import provider, remote_address
from tokensrv.server.web import cookies
from tokensrv.server.web.login import signed_in_cookie
from tokensrv.server.web.pages import SECURITY_HEADERS
from tokensrv.server.web.same_origin import refuse_cross_site

SCRIPT = Path(__file__).parent / "static" / "passkeys.js"


async def _body(request: web.Request) -> dict[str, Any]:
    refuse_cross_site(request)  # before anything is read, counted or stored
    if request.content_type != "application/json":
        raise InvalidRequest("passkey body: wrong content type", description="the body must be application/json")
    return passkey_account.parse_body(await request.read())  # read() is bounded by the app's client_max_size


def _json(body: str | dict[str, Any]) -> web.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return web.Response(text=text, content_type="application/json", headers={**SECURITY_HEADERS, **NO_STORE})


async def account_options(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(await passkey_account.options(provider(request), body, cookies.session_secret(request),
                                               cookies.csrf_token(request)))


async def account_add(request: web.Request) -> web.Response:
    body = await _body(request)
    key = await passkey_account.add(provider(request), body, cookies.session_secret(request),
                                    cookies.csrf_token(request), remote_address(request))
    return _json({"name": key.name, "location": "/account"})


async def login_options(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(await passkey_signin.options(provider(request), body, cookies.csrf_token(request),
                                              cookies.session_secret(request)))


async def login(request: web.Request) -> web.Response:
    body = await _body(request)
    outcome = await passkey_signin.sign_in(provider(request), body, cookies.csrf_token(request),
                                           cookies.session_secret(request), remote_address(request),
                                           request.headers.get("User-Agent", ""))
    response = _json({"location": outcome.location})
    signed_in_cookie(request, response, outcome)
    return response


async def script(request: web.Request) -> web.FileResponse:
    # text/javascript (RFC 9239), not the application/javascript a guess from the name gives
    return web.FileResponse(SCRIPT, headers={"Content-Type": "text/javascript; charset=utf-8",
                                             "X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    app.router.add_post("/account/passkeys/options", account_options)
    app.router.add_post("/account/passkeys", account_add)
    app.router.add_post("/login/passkey/options", login_options)
    app.router.add_post("/login/passkey", login)
    app.router.add_get("/static/passkeys.js", script)
