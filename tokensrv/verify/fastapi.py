"""FastAPI integration: the ASGI middleware (tokensrv.verify.asgi) and a dependency that checks a
route's scopes and roles and hands it the token's claims. Answers: tokensrv.verify.http.

    app = FastAPI()
    setup(app, TokenVerifier(issuer, "orders", redis_url), realm="orders")

    @app.get("/orders")
    async def list_orders(claims: Annotated[dict[str, Any], Depends(require(scopes=["orders:read"]))]):
        return {"sub": claims["sub"]}

    app.add_api_route("/backchannel-logout", logout_endpoint(end_sessions), methods=["POST"])
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from . import http
from .asgi import TokenMiddleware, authenticate, logout_endpoint, to_response
from .verifier import TokenVerifier

__all__ = ["TokenMiddleware", "logout_endpoint", "require", "setup"]


def setup(app: FastAPI, verifier: TokenVerifier, realm: str = "api", public_url: str | None = None) -> None:
    """Install the middleware (which starts and closes `verifier` with the app) and the answer to
    a refusal raised by `require`. `public_url`: see TokenMiddleware."""
    app.add_middleware(TokenMiddleware, verifier=verifier, realm=realm, public_url=public_url)
    app.add_exception_handler(http.Refused, _refused)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, http.Refused)
    return to_response(exc.answer)


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()
            ) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency: the token's claims, for a valid token carrying every scope and role listed;
    otherwise the request is refused (401, 403) before the route runs."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    async def token_claims(request: Request) -> dict[str, Any]:
        return await authenticate(request.scope, needed_scopes, needed_roles)
    return token_claims
