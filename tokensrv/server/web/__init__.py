"""The HTML side of tokensrv: sign-in, logout, the account page, their templates and stylesheet."""
from __future__ import annotations

import time
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from tokensrv.server.web import account, consent, device, login, logout, passkeys

HERE = Path(__file__).parent
STYLESHEET = HERE / "static" / "style.css"


def day(epoch: int) -> str:
    """A date for people, in UTC (the server does not know the reader's zone): 8 Dec 2026."""
    moment = time.gmtime(epoch)
    return f"{moment.tm_mday} {time.strftime('%b %Y', moment)}"


def when(epoch: int) -> str:
    """A date and time for people, in UTC: 8 Dec 2026, 00:38 UTC."""
    return f"{day(epoch)}, {time.strftime('%H:%M', time.gmtime(epoch))} UTC"


def setup_web(app: web.Application) -> None:
    environment = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                                       autoescape=jinja2.select_autoescape(["html"], default=True),
                                       undefined=jinja2.StrictUndefined)
    environment.filters.update(day=day, when=when)  # the pages' dates, written one way
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
