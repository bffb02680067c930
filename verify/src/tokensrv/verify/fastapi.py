"""FastAPI integration: `TokenAuth`, a verifier started and closed with the app's lifespan, and a
dependency that checks a route's scopes and roles and hands it the token's claims.

    auth = TokenAuth(issuer="http://127.0.0.1:8080", audience="orders", redis_url=..., realm="orders")
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/orders")
    async def list_orders(claims: Annotated[dict[str, Any], Depends(auth.require(scopes=["orders:read"]))]):
        return {"sub": claims["sub"]}

    app.add_route("/backchannel-logout", auth.logout_endpoint(end_sessions), methods=["POST"])

A refusal is an HTTPException, answered by FastAPI as usual: the status and `WWW-Authenticate`
of tokensrv.verify.http (RFC 6750, RFC 9449), the body `{"detail": {"error", "error_description"}}`.
To refuse a bad token on every route, public ones too, add tokensrv.verify.asgi.TokenMiddleware.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.requests import Request

from . import http
from .asgi import Endpoint, Guard, logout_endpoint
from .verifier import TokenVerifier

__all__ = ["TokenAuth", "TokenRefused"]


class TokenRefused(HTTPException):
    """A refusal, as FastAPI answers an HTTPException (its challenges joined in one header,
    as RFC 9110 §11.6.1 allows)."""

    def __init__(self, answer: http.Answer) -> None:
        headers: dict[str, str] = {}
        for name, value in answer.headers:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        super().__init__(answer.status, detail=json.loads(answer.body), headers=headers)
        self.answer = answer


class TokenAuth:
    """A FastAPI app's verifier: `TokenAuth(verifier)`, or `TokenAuth(issuer=..., audience=...,
    redis_url=..., **TokenVerifier options)`. `realm` names the protected resource in the
    challenges; `public_url`: the scheme and host (and any path prefix) clients reach this service
    at, when that is not what the request says (behind a proxy); DPoP proofs name that URL."""

    def __init__(self, verifier: TokenVerifier | None = None, *, issuer: str | None = None,
                 audience: str | None = None, redis_url: str | None = None, realm: str = "api",
                 public_url: str | None = None, **options: Any) -> None:
        if verifier is None:
            if issuer is None or audience is None:
                raise TypeError("TokenAuth needs a TokenVerifier, or an issuer and an audience")
            verifier = TokenVerifier(issuer, audience, redis_url, **options)
        self.guard = Guard(verifier, realm, public_url)

    @property
    def verifier(self) -> TokenVerifier:
        return self.guard.verifier

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """`FastAPI(lifespan=auth.lifespan)`, or `async with auth.lifespan(app):` in your own."""
        await self.guard.start()
        try:
            yield
        finally:
            await self.guard.close()

    def require(self, scopes: Iterable[str] = (), roles: Iterable[str] = ()
                ) -> Callable[[Request], Awaitable[dict[str, Any]]]:
        """A dependency: the token's claims, for a valid token carrying every scope and role
        listed; otherwise the request is refused (401, 403) before the route runs."""
        needed_scopes, needed_roles = tuple(scopes), tuple(roles)

        async def token_claims(request: Request) -> dict[str, Any]:
            try:
                return await self.guard.authenticate(request.scope, needed_scopes, needed_roles)
            except http.Refused as refused:
                raise TokenRefused(refused.answer) from None
        return token_claims

    def logout_endpoint(self, on_logout: Callable[[dict[str, Any]], Awaitable[None]],
                        audience: str | None = None) -> Endpoint:
        """The back-channel logout receiver: see tokensrv.verify.asgi.logout_endpoint."""
        return logout_endpoint(on_logout, audience, self.guard)
