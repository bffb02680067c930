"""The HTML side of tokensrv: sign-in, logout, the account page, their templates and stylesheet."""
from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from tokensrv.server.web import account, consent, device, login, logout, passkeys

HERE = Path(__file__).parent
STYLESHEET = HERE / "static" / "style.css"


def setup_web(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(["html"], default=True),
                         undefined=jinja2.StrictUndefined)
    login.setup(app)
    consent.setup(app)
    logout.setup(app)
    device.setup(app)
    account.setup(app)
    passkeys.setup(app)  # and the one script, /static/passkeys.js
    # the one static file, by name: any other path under /static/ is the router's JSON 404 (a
    # static folder answers a missing file itself, with an empty application/octet-stream 404)
    app.router.add_get("/static/style.css", stylesheet)


async def stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STYLESHEET)  # with ETag and Last-Modified, as the static folder gave
