"""aiohttp integration: a middleware that verifies Bearer tokens (RFC 6750 §2.1) and DPoP-bound
tokens (`Authorization: DPoP <token>` with a `DPoP` proof header, RFC 9449 §7), and a `require`
decorator for handlers. The verified claims are on the request: `request[CLAIMS]`, or `claims_of(request)`.

    setup(app, verifier, realm="orders")        # app[VERIFIER], app[REALM], the middleware
    setup(app, verifier, realm="orders", public_url="https://orders.example")  # behind a proxy:
                                                # the base of the URLs clients' proofs name (htu)

    @require(scopes=["orders:read"])
    async def list_orders(request: web.Request) -> web.Response:
        sub = claims_of(request)["sub"]

    app.router.add_post("/backchannel-logout", logout_receiver(end_sessions))  # OIDC back-channel logout

The answers (RFC 6750 §3, RFC 9449 §7.1) are those of every framework's adapter: see
tokensrv.verify.http, which reads the credentials and builds the answers for all of them.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from . import http
from .errors import InvalidToken
from .tracing import service_parent, tracer_for
from .verifier import TokenVerifier

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

VERIFIER = web.AppKey("tokensrv_verifier", TokenVerifier)
REALM = web.AppKey("tokensrv_realm", str)
PUBLIC_URL = web.AppKey("tokensrv_public_url", str)
# the verified claims of the request's token (a typed key on aiohttp >= 3.13, a string before)
CLAIMS: Any = web.RequestKey("tokensrv_claims", dict) if hasattr(web, "RequestKey") else "tokensrv_claims"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application, verifier: TokenVerifier, realm: str = "api",
          public_url: str | None = None, tracer_provider: Any = None) -> None:
    """Install the verifier and `bearer_middleware` on an application not yet started.
    `public_url`: the scheme and host (and any path prefix) clients reach this service at, when
    that is not what the request says (behind a proxy); DPoP proofs name that URL.
    `tracer_provider`: trace each verification (a "tokensrv.verify" span); None: the verifier's,
    else the global one if an OpenTelemetry SDK is set up by now; without one, no tracing at all."""
    app[VERIFIER], app[REALM] = verifier, realm
    if public_url is not None:
        app[PUBLIC_URL] = public_url.rstrip("/")
    tracer = tracer_for(tracer_provider or verifier.tracer_provider)
    app.middlewares.append(bearer_middleware if tracer is None else traced_bearer_middleware(tracer))


@web.middleware
async def bearer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the token of every request that carries one (a bad one is refused here); a request
    without one passes through: `require` decides whether its handler needs one."""
    if "Authorization" in request.headers:
        await authenticate(request)
    return await handler(request)


def traced_bearer_middleware(tracer: Tracer) -> Middleware:
    """`bearer_middleware`, with each verification in a "tokensrv.verify" span: a child of the
    service's own request span if it has one, else of the caller's `traceparent`. It says the
    outcome (`valid` or the error code) and the token's client_id; never the token."""

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "Authorization" in request.headers:
            parent = service_parent(request.headers)
            with tracer.start_as_current_span("tokensrv.verify", context=parent, record_exception=False,
                                              set_status_on_exception=False) as span:
                try:
                    claims = await authenticate(request)
                except web.HTTPException as exc:
                    span.set_attribute(OUTCOME, _error_code(exc))
                    raise
                span.set_attribute(OUTCOME, "valid")
                if isinstance(claims.get("client_id"), str):
                    span.set_attribute("oauth.client_id", claims["client_id"])
        return await handler(request)
    return traced


OUTCOME = "tokensrv.verify.outcome"


def _error_code(exc: web.HTTPException) -> str:
    """The `error` of an answer authenticate() raised (to_exception wrote its body)."""
    try:
        return str(json.loads(exc.text or "")["error"])
    except (ValueError, KeyError, TypeError):
        return f"http_{exc.status}"


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[Handler], Handler]:
    """Decorate a handler: it runs only for a valid token carrying every scope and role listed."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            await authenticate(request, needed_scopes, needed_roles)
            return await handler(request)
        return wrapper
    return decorate


def claims_of(request: web.Request) -> dict[str, Any]:
    """The verified claims; for handlers behind `require`."""
    claims: dict[str, Any] = request[CLAIMS]
    return claims


async def authenticate(request: web.Request, scopes: Iterable[str] = (), roles: Iterable[str] = ()
                       ) -> dict[str, Any]:
    """The request's claims, verified once per request; else the RFC 6750 answer is raised."""
    try:
        verified = request.get(_VERIFIED)
        if verified is None:
            verified = await http.verify_request(request.app[VERIFIER], presented(request),
                                                 request.app.get(REALM, "api"))
            request[_VERIFIED] = verified
            request[CLAIMS] = verified.claims
        http.check_access(verified, scopes, roles)
    except http.Refused as refused:
        raise to_exception(refused.answer) from None
    return verified.claims


_VERIFIED: Any = web.RequestKey("tokensrv_verified", http.Verified) if hasattr(web, "RequestKey") \
    else "tokensrv_verified"


def presented(request: web.Request) -> http.Presented:
    return http.Presented(request.method, request_url(request), request.headers.getall("Authorization", []),
                          request.headers.getall("DPoP", []))


def request_url(request: web.Request) -> str:
    """The URL the client used, as far as we know it: `public_url` and the path when configured."""
    base = request.app.get(PUBLIC_URL)
    return base + request.url.raw_path if base is not None else str(request.url)


def error_response(exc: InvalidToken, realm: str, dpop_algs: str | None = None) -> web.HTTPException:
    """The answer to `exc`; with `dpop_algs`, in the DPoP scheme's challenge (RFC 9449 §7.1)."""
    return to_exception(http.error_answer(exc, realm, dpop_algs))


def to_exception(answer: http.Answer) -> web.HTTPException:
    """The aiohttp exception that sends a refusal's `answer`."""
    return _STATUS[answer.status](text=answer.body.decode(), content_type=answer.content_type,
                                  headers=CIMultiDict(answer.headers))


_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
    503: web.HTTPServiceUnavailable}


def logout_receiver(on_logout: Callable[[dict[str, Any]], Awaitable[None]], audience: str | None = None
                    ) -> Handler:
    """A handler for the back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.5): it checks
    the POSTed logout token, awaits `on_logout(claims)` (end the sessions of `claims["sid"]`, or
    of `claims["sub"]` without one), and answers 200; a bad token gets 400 (§2.8).
    `audience`: this relying party's client_id, when it is not the verifier's audience."""

    async def receive(request: web.Request) -> web.StreamResponse:
        body = await request.content.read(http.MAX_LOGOUT_BODY + 1)
        tokens = http.logout_tokens(request.headers.get("Content-Type"), body)
        try:
            claims = await http.receive_logout(request.app[VERIFIER], tokens, audience)
        except http.Refused as refused:
            raise to_exception(refused.answer) from None
        await on_logout(claims)
        return web.Response(status=200, headers=dict(http.LOGGED_OUT.headers))
    return receive
