"""ASGI integration (Starlette; FastAPI has tokensrv.verify.fastapi, over the same Guard): a
middleware that verifies each request's Bearer or DPoP token with a TokenVerifier running in the
server's own event loop, a `require` decorator for Starlette endpoints, and the back-channel
logout receiver. Answers: tokensrv.verify.http.

    app = Starlette(routes=[Route("/orders", list_orders),
                            Route("/backchannel-logout", logout_endpoint(end_sessions), methods=["POST"])],
                    middleware=[Middleware(TokenMiddleware, verifier=verifier, realm="orders")])

    @require(scopes=["orders:read"])
    async def list_orders(request: Request) -> Response:
        return JSONResponse({"sub": claims_of(request)["sub"]})

The middleware starts the verifier at the server's lifespan startup (or on the first request, for
a server that sends no lifespan events) and closes it at shutdown. A request carrying an
Authorization header is verified before the app sees it (a bad token is refused there, whatever
the route); `require` refuses a request without a token, or without the scopes and roles listed.
WebSocket connections pass through untouched.
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

GUARD = "tokensrv.verify"  # scope key: the Guard of the TokenMiddleware that saw the request
VERIFIED = "tokensrv.verify.verified"  # scope key: the request's http.Verified

Endpoint = Callable[[Request], Awaitable[Response]]


class Guard:
    """A verifier started once (whoever asks first), the realm of its answers, and how a
    request's token is read and verified once per request.
    `public_url`: the scheme and host (and any path prefix) clients reach this service at, when
    that is not what the request says (behind a proxy); DPoP proofs name that URL."""

    def __init__(self, verifier: TokenVerifier, realm: str = "api", public_url: str | None = None) -> None:
        self.verifier, self.realm = verifier, realm
        self.public_url = None if public_url is None else public_url.rstrip("/")
        self._started = False
        self._starting = asyncio.Lock()

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

    async def verified(self, scope: Scope) -> http.Verified:
        """The request's verified token (verified once per request), else http.Refused."""
        verified: http.Verified | None = scope.get(VERIFIED)
        if verified is None:
            await self.start()
            verified = await http.verify_request(self.verifier, self.presented(scope), self.realm)
            scope[VERIFIED] = verified
        return verified

    async def authenticate(self, scope: Scope, scopes: Iterable[str] = (), roles: Iterable[str] = ()
                           ) -> dict[str, Any]:
        """The request's claims if its token carries every scope and role listed; else http.Refused."""
        verified = await self.verified(scope)
        http.check_access(verified, scopes, roles)
        return verified.claims

    def presented(self, scope: Scope) -> http.Presented:
        connection = HTTPConnection(scope)
        if self.public_url is None:
            url = str(connection.url.replace(query=""))
        else:
            url = self.public_url + quote(scope.get("root_path", "") + scope["path"])
        return http.Presented(scope["method"], url, connection.headers.getlist("authorization"),
                              connection.headers.getlist("dpop"))

    async def receive_logout(self, request: Request, audience: str | None) -> dict[str, Any]:
        """The claims of the request's logout token; else http.Refused (400)."""
        await self.start()
        body = await read_at_most(request, http.MAX_LOGOUT_BODY + 1)
        tokens = http.logout_tokens(request.headers.get("content-type"), body)
        return await http.receive_logout(self.verifier, tokens, audience)


class TokenMiddleware:
    """Verify the token of every request that carries one; start and close the verifier with the
    app. Its arguments after `app` are Guard's."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, realm: str = "api",
                 public_url: str | None = None) -> None:
        self.app, self.guard = app, Guard(verifier, realm, public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[GUARD] = self.guard
        if any(name == b"authorization" for name, _ in scope["headers"]):
            try:
                await self.guard.verified(scope)
            except http.Refused as refused:
                await send_answer(send, refused.answer)
                return
        await self.app(scope, receive, send)

    def _lifespan(self, receive: Receive) -> Receive:
        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.guard.start()
            elif message["type"] == "lifespan.shutdown":
                await self.guard.close()
            return message
        return lifespan_receive


def guard_of(scope: Scope) -> Guard:
    guard = scope.get(GUARD)
    if isinstance(guard, Guard):
        return guard
    raise RuntimeError("tokensrv.verify: the app has no TokenMiddleware")


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[Endpoint], Endpoint]:
    """Decorate a Starlette endpoint: it runs only for a valid token carrying every scope and role listed."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            try:
                await guard_of(request.scope).authenticate(request.scope, needed_scopes, needed_roles)
            except http.Refused as refused:
                return to_response(refused.answer)
            return await endpoint(request)
        return wrapper
    return decorate


def claims_of(request: HTTPConnection) -> dict[str, Any]:
    """The verified claims of `request`; for endpoints behind `require`."""
    verified: http.Verified = request.scope[VERIFIED]
    return verified.claims


def logout_endpoint(on_logout: Callable[[dict[str, Any]], Awaitable[None]], audience: str | None = None,
                    guard: Guard | None = None) -> Endpoint:
    """An endpoint for the back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.5; route it
    for POST): it checks the logout token, awaits `on_logout(claims)` (end the sessions of
    `claims["sid"]`, or of `claims["sub"]` without one) and answers 200; a bad token gets 400.
    `audience`: this relying party's client_id, when it is not the verifier's audience. `guard`:
    whose verifier checks it (default: the TokenMiddleware's)."""

    async def backchannel_logout(request: Request) -> Response:
        try:
            claims = await (guard or guard_of(request.scope)).receive_logout(request, audience)
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
