"""ASGI integration (Starlette, and FastAPI through tokensrv.verify.fastapi): a middleware that
verifies each request's Bearer or DPoP token with a TokenVerifier running in the server's own
event loop, a `require` decorator for Starlette endpoints, and the back-channel logout receiver.
Answers: tokensrv.verify.http.

    app = Starlette(routes=[Route("/orders", list_orders),
                            Route("/backchannel-logout", logout_endpoint(end_sessions), methods=["POST"])],
                    middleware=[Middleware(TokenMiddleware, verifier=verifier, realm="orders")])

    @require(scopes=["orders:read"])
    async def list_orders(request: Request) -> Response:
        return JSONResponse({"sub": claims_of(request)["sub"]})

The middleware starts the verifier at the server's lifespan startup (or on the first request, for
a server that sends no lifespan events) and closes it at shutdown. A request carrying an
Authorization header is verified before the app sees it; `require` (or the FastAPI dependency)
refuses a request without a token, or without the scopes and roles listed. WebSocket connections
pass through untouched.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import http
from .verifier import TokenVerifier

CONTEXT = "tokensrv.verify"  # scope key: the TokenMiddleware that saw the request
VERIFIED = "tokensrv.verify.verified"  # scope key: the request's http.Verified

Endpoint = Callable[[Request], Awaitable[Response]]


class TokenMiddleware:
    """`public_url`: the scheme and host (and any path prefix) clients reach this service at, when
    that is not what the request says (behind a proxy); DPoP proofs name that URL."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, realm: str = "api",
                 public_url: str | None = None) -> None:
        self.app, self.verifier, self.realm = app, verifier, realm
        self.public_url = None if public_url is None else public_url.rstrip("/")
        self._started = False
        self._starting = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.start()
        scope[CONTEXT] = self
        try:
            if any(name == b"authorization" for name, _ in scope["headers"]):
                await self.verified(scope)
            await self.app(scope, receive, send)
        except http.Refused as refused:  # raised before any response: by the FastAPI dependency
            await send_answer(send, refused.answer)

    async def start(self) -> None:
        async with self._starting:
            if not self._started:
                await self.verifier.start()
                self._started = True

    async def close(self) -> None:
        async with self._starting:
            if self._started:
                self._started = False
                await self.verifier.close()

    def _lifespan(self, receive: Receive) -> Receive:
        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
            elif message["type"] == "lifespan.shutdown":
                await self.close()
            return message
        return lifespan_receive

    async def verified(self, scope: Scope) -> http.Verified:
        """The request's verified token (verified once per request), else http.Refused."""
        verified: http.Verified | None = scope.get(VERIFIED)
        if verified is None:
            verified = await http.verify_request(self.verifier, self.presented(scope), self.realm)
            scope[VERIFIED] = verified
        return verified

    def presented(self, scope: Scope) -> http.Presented:
        headers = HTTPConnection(scope).headers
        if self.public_url is None:
            url = str(HTTPConnection(scope).url.replace(query=""))
        else:
            url = self.public_url + quote(scope.get("root_path", "") + scope["path"])
        return http.Presented(scope["method"], url, headers.getlist("authorization"), headers.getlist("dpop"))


def middleware_of(scope: Scope) -> TokenMiddleware:
    context = scope.get(CONTEXT)
    if isinstance(context, TokenMiddleware):
        return context
    raise RuntimeError("tokensrv.verify: the app has no TokenMiddleware")


async def authenticate(scope: Scope, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> dict[str, Any]:
    """The request's claims if its token carries every scope and role listed; else http.Refused."""
    verified = await middleware_of(scope).verified(scope)
    http.check_access(verified, scopes, roles)
    return verified.claims


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[Endpoint], Endpoint]:
    """Decorate a Starlette endpoint: it runs only for a valid token carrying every scope and role listed."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            try:
                await authenticate(request.scope, needed_scopes, needed_roles)
            except http.Refused as refused:
                return to_response(refused.answer)
            return await endpoint(request)
        return wrapper
    return decorate


def claims_of(request: HTTPConnection) -> dict[str, Any]:
    """The verified claims of `request`; for endpoints behind `require`."""
    verified: http.Verified = request.scope[VERIFIED]
    return verified.claims


def logout_endpoint(on_logout: Callable[[dict[str, Any]], Awaitable[None]], audience: str | None = None
                    ) -> Endpoint:
    """An endpoint for the back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.5; route it
    for POST): it checks the logout token, awaits `on_logout(claims)` (end the sessions of
    `claims["sid"]`, or of `claims["sub"]` without one) and answers 200; a bad token gets 400.
    `audience`: this relying party's client_id, when it is not the verifier's audience."""

    async def backchannel_logout(request: Request) -> Response:
        body = await read_at_most(request, http.MAX_LOGOUT_BODY + 1)
        tokens = http.logout_tokens(request.headers.get("content-type"), body)
        try:
            claims = await http.receive_logout(middleware_of(request.scope).verifier, tokens, audience)
        except http.Refused as refused:
            return to_response(refused.answer)
        await on_logout(claims)
        return to_response(http.LOGGED_OUT)
    return backchannel_logout


async def read_at_most(request: Request, limit: int) -> bytes:
    """The body, or its first `limit` bytes: a larger one is refused without being read whole."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def to_response(answer: http.Answer) -> Response:
    response = Response(answer.body, status_code=answer.status,
                        media_type=answer.content_type if answer.body else None)
    for name, value in answer.headers:
        response.headers.append(name, value)
    return response


async def send_answer(send: Send, answer: http.Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status,
                "headers": [(b"content-type", answer.content_type.encode()),
                            (b"content-length", str(len(answer.body)).encode()),
                            *((name.lower().encode(), value.encode("latin-1")) for name, value in answer.headers)]})
    await send({"type": "http.response.body", "body": answer.body})
