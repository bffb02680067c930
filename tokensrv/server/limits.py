"""What a request may cost the server, and who is to blame when it fails: the time its body may
take (TOKENSRV_BODY_TIMEOUT), its announced size, and a client that hung up mid-request, which
is the client's doing and never a store outage (app.error_middleware's 503).

The time a request's head may take is bounded per connection, in protocol.py.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.streams import StreamReader

from tokensrv import errors
from tokensrv.server.appkeys import SETTINGS

log = logging.getLogger("tokensrv")

SERVER = "tokensrv"  # the Server header: what answers, never which versions of what
CLIENT_CLOSED = 499  # the status counted for a client that left before its answer (nginx's)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: an announced body over the size limit is refused before a byte of it is read;
    any other must arrive within TOKENSRV_BODY_TIMEOUT or its reader gets 408; a client that left
    while we read its body is logged as a client abort, one line, and counted as 499."""
    body = request.content
    if not body.is_eof():
        deadline = asyncio.get_running_loop().call_later(
            request.app[SETTINGS].body_timeout, _body_too_slow, body)
        body.on_eof(deadline.cancel)
        if request.content_length is not None and request.content_length > request.client_max_size:
            # the deadline stays: it also ends aiohttp's lingering read of the unread body
            raise errors.PayloadTooLarge(f"announced {request.content_length} bytes")
    try:
        return await handler(request)
    except (ConnectionError, web.RequestPayloadError) as exc:
        if not client_gone(request, exc):
            if isinstance(exc, web.RequestPayloadError):  # a body we cannot decode (a bad gzip stream, say)
                body.set_exception(_Dropped())
                raise errors.InvalidRequest("malformed body", description="the request body is malformed") from None
            raise
        log.info("%s %s: client abort: the connection closed before the answer (%s)",
                 request.method, request.path, type(exc).__name__)
        return web.Response(status=CLIENT_CLOSED)  # never sent: counted and logged as 499


class _Dropped(TimeoutError):
    """Set on a body we stop reading. After the answer aiohttp reads what is left of an unread body
    (so that the client sees the answer rather than a reset) until a TimeoutError, quietly; any
    other exception there is logged as unhandled, with a traceback."""


def _body_too_slow(body: StreamReader) -> None:
    if not body.is_eof() and body.exception() is None:
        # a reader waiting for the rest gets it now, and so does aiohttp's read of an unread body
        # after the answer (RequestTimeout is a TimeoutError: see _Dropped)
        body.set_exception(errors.RequestTimeout("body not received in time"))


def client_gone(request: web.Request, exc: BaseException) -> bool:
    """`exc` says the client's connection broke and it is indeed closed: the client left (a
    reset while we read its body or wrote our answer), not a failure of ours or of the store's
    (whose client wraps its own connection errors in redis' exceptions)."""
    if not isinstance(exc, ConnectionError | web.RequestPayloadError):
        return False
    transport = request.transport
    return transport is None or transport.is_closing()


async def server_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: aiohttp would name itself and Python, with their versions."""
    response.headers["Server"] = SERVER
