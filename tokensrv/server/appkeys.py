"""The aiohttp application's typed keys and the response constants its handlers share.

Kept apart from app.py so that the handlers (routes.py, web/, observe.py) import these and
app.py imports the handlers: one direction. Imports nothing of tokensrv that imports aiohttp.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from tokensrv import errors
from tokensrv.config import Settings
from tokensrv.oauth import Provider

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
PROVIDER = web.AppKey("provider", Provider)
DISCOVERY = web.AppKey("discovery", bytes)
RUN_SCHEDULE = web.AppKey("run_schedule", bool)
DELIVER_LOGOUTS = web.AppKey("deliver_logouts", bool)  # run the back-channel logout delivery task
# the OAuth error code a request was answered with (set by app.error_middleware; read by tracing.py)
OAUTH_ERROR = web.RequestKey("oauth_error", str)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def error_response(exc: errors.OAuthError) -> web.Response:
    """An OAuthError as its JSON answer (app.error_middleware's, and protocol.py's for what aiohttp's
    parser refuses)."""
    headers = {**NO_STORE, **exc.headers}
    return web.Response(status=exc.status, body=json.dumps(exc.body()).encode(),
                        content_type="application/json", headers=headers)
