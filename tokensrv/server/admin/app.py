"""The admin API's aiohttp application and its listener, started and stopped by the public app's
lifecycle (server/app.py create_app: a cleanup context after the provider's), so that it serves
exactly while the server does, with the same provider, access lines and error answers.

The admin app serves /admin/ only, and the public app has no /admin route: each listener answers
the other's paths with the usual 404. Its listener is TOKENSRV_ADMIN_HOST:TOKENSRV_ADMIN_PORT, or a
socket `tokensrv serve --workers N` opened for this worker (SO_REUSEPORT, like the public one).
"""
from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Middleware

from tokensrv.server.admin.people import setup_people_routes
from tokensrv.server.admin.routes import MAX_BODY, caller_middleware, setup_client_routes
from tokensrv.server.appkeys import CLOCK, PROVIDER, SETTINGS
from tokensrv.server.limits import body_middleware, server_header
from tokensrv.server.observe import TALLY
from tokensrv.server.protocol import Runner

ADMIN_APP = web.AppKey("admin_app", web.Application)
ADMIN_SOCKET: web.AppKey[socket.socket | None] = web.AppKey("admin_socket")


class AdminListenError(Exception):
    """The admin listener could not start: one line naming the address and the setting."""


def create_admin_app(public: web.Application, middlewares: list[Middleware]) -> web.Application:
    """`middlewares`: the public app's error and observation middlewares, outermost first."""
    admin = web.Application(middlewares=[*middlewares, caller_middleware, body_middleware],
                            client_max_size=MAX_BODY)
    admin.on_response_prepare.append(server_header)
    admin[SETTINGS] = public[SETTINGS]
    admin[CLOCK] = public[CLOCK]
    setup_client_routes(admin)
    setup_people_routes(admin)
    return admin


async def admin_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """The admin listener, when one is configured, from the provider's start to its end."""
    settings, sock = app[SETTINGS], app.get(ADMIN_SOCKET)
    if sock is None and not settings.admin_port:
        yield
        return
    admin = app[ADMIN_APP]
    admin[PROVIDER], admin[TALLY] = app[PROVIDER], app[TALLY]
    runner = Runner(admin, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout,
                    header_timeout=settings.header_timeout)
    await runner.setup()
    site = web.SockSite(runner, sock) if sock else web.TCPSite(runner, settings.admin_host, settings.admin_port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise admin_listen_error(settings.admin_host, settings.admin_port, exc) from None
    yield
    await runner.cleanup()


def admin_listen_error(host: str, port: int, exc: OSError) -> AdminListenError:
    reason = "the address is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    return AdminListenError(f"cannot listen on {host}:{port} for the admin API: {reason} "
                            "(set TOKENSRV_ADMIN_PORT or --admin-port)")
