"""tokensrv's HTTP connections: aiohttp's, with a deadline for each request's head and an RFC 6749
answer, which echoes nothing, for a request aiohttp's parser refuses.

aiohttp bounds the idle time between requests (keepalive_timeout) but not the time a client may
take to send a request line and headers: a client dribbling a header line every few seconds
(slowloris) would hold its connection for as long as it likes. There is no option for it, so the
deadline lives where the bytes arrive: in the connection's protocol. The body has its own
deadline, in the application (http_limits.body_middleware).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from tokensrv import errors
from tokensrv.server.appkeys import error_response
from tokensrv.server.limits import SERVER

log = logging.getLogger("tokensrv")


class Protocol(RequestHandler):
    """One client connection. Its first request's head must arrive within `header_timeout` of the
    connection opening, a later one's within `header_timeout` of its first byte (an idle
    keep-alive connection waits for aiohttp's keepalive_timeout); past that the connection closes."""

    __slots__ = ("_body", "_head_deadline", "_head_started", "_header_timeout")  # as aiohttp's: one per connection

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False  # a byte of the awaited head has arrived
        self._body: StreamReader | None = None  # the newest request's body

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        if data and self._head_deadline is None and (self._body is None or self._body.is_eof()):
            self._arm_head_deadline()  # the first byte of the next request
        self._head_started = self._head_started or bool(data)
        requests = self._request_count
        super().data_received(data)
        if self._request_count != requests:  # a head is complete (or refused): its deadline is met
            self._body = self._messages[-1][1] if self._messages else None
            self._disarm_head_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._head_started = False
        self._head_deadline = asyncio.get_running_loop().call_later(self._header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport is None:
            return
        if self._head_started:  # a connection that sent nothing is closed as quietly as an idle one
            log.info("closed a connection from %s: no complete request head within %s s",
                     _peer(self.peername), self._header_timeout)
        self.force_close()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp answers its parser's refusals (status 400: a line or header too long, too many
        headers, bad bytes, a bad request line) in text/plain with the parser's message, which
        quotes the offending bytes (an Authorization header's, say), and logs them with a
        traceback. Here: invalid_request in JSON, and one log line naming only the kind of fault."""
        if request.writer.output_size > 0:  # as aiohttp: part of an answer is out, no other can follow
            raise ConnectionError("the answer was already started")
        if status == 400:
            log.info("refused a malformed request from %s: %s", request.remote, type(exc).__name__)
            error: errors.OAuthError = errors.InvalidRequest(
                description="the request line or headers are malformed or too large")
        else:  # an exception that escaped every middleware: a bug of ours
            log.error("%s %s: unhandled error", request.method, request.path, exc_info=exc)
            error = errors.OAuthError("unhandled")
        response = error_response(error)
        response.headers["Server"] = SERVER  # the application's on_response_prepare does not run here
        response.force_close()
        return response


def _peer(peername: object) -> str:
    return str(peername[0]) if isinstance(peername, tuple) else str(peername)


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return Protocol(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """web.AppRunner with Protocol for every connection: aiohttp's web.Server builds its own
    RequestHandler and takes no class to build instead, hence the swap of its class below."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server
