"""The HTML side of tokensrv: sign-in, logout, their templates and stylesheet."""
from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import device, login, logout

HERE = Path(__file__).parent


def setup_web(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(["html"], default=True),
                         undefined=jinja2.StrictUndefined)
    login.setup(app)
    logout.setup(app)
    device.setup(app)
    app.router.add_static("/static/", HERE / "static", append_version=False)
