"""aiohttp integration: a middleware that verifies Bearer tokens (RFC 6750 §2.1) and DPoP-bound
tokens (`Authorization: DPoP <token>` with a `DPoP` proof header, RFC 9449 §7), and a `require`
decorator for handlers. The verified claims are on the request: `request[CLAIMS]`, or `claims_of(request)`.

    setup(app, verifier, realm="orders")        # app[VERIFIER], app[REALM], the middleware
    setup(app, verifier, realm="orders", public_url="https://orders.example")  # behind a proxy:
                                                # the base of the URLs clients' proofs name (htu)

    @require(scopes=["orders:read"])
    async def list_orders(request: web.Request) -> web.Response:
        sub = claims_of(request)["sub"]

Answers (RFC 6750 §3): no token -> 401 `WWW-Authenticate: Bearer realm="..."` (no error code,
§3.1); a malformed Authorization header -> 400 `error="invalid_request"`; a bad token -> 401
`error="invalid_token"`; a missing scope -> 403 `error="insufficient_scope", scope="..."`; a
missing role -> 403; a verifier unable to decide -> 503. Bodies are JSON `{"error",
"error_description"}` with fixed descriptions: the real reason is logged (debug), never sent.
DPoP (RFC 9449 §7.1): a 401 without credentials carries a second challenge, `DPoP realm="...",
algs="..."`; a request with the DPoP scheme, or a DPoP-bound token presented as Bearer, is
answered with a `DPoP` challenge: `error="invalid_dpop_proof"` for a missing, repeated, malformed,
replayed or mismatched proof, `error="invalid_token"` for a token that is bad or not bound to the
proof's key.
"""
from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from .claims import require_roles, require_scopes
from .dpop import ALGORITHMS as DPOP_ALGORITHMS
from .errors import (
    InsufficientRole,
    InsufficientScope,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    InvalidToken,
    VerifierUnavailable,
)
from .tracing import service_parent, tracer_for
from .verifier import TokenVerifier

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

log = logging.getLogger("tokensrv.verify")

VERIFIER = web.AppKey("tokensrv_verifier", TokenVerifier)
REALM = web.AppKey("tokensrv_realm", str)
PUBLIC_URL = web.AppKey("tokensrv_public_url", str)
# the verified claims of the request's token (a typed key on aiohttp >= 3.13, a string before)
CLAIMS: Any = web.RequestKey("tokensrv_claims", dict) if hasattr(web, "RequestKey") else "tokensrv_claims"
# RFC 6750 §2.1 and RFC 9449 §7.1: the scheme, then a b64token
_CREDENTIALS = re.compile(r"(Bearer|DPoP) +([A-Za-z0-9._~+/-]+=*)", re.IGNORECASE)
_SCHEMES = ("bearer", "dpop")

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
    """The `error` of an answer authenticate() raised (_json_error wrote its body)."""
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
    realm = request.app.get(REALM, "api")
    verifier = request.app[VERIFIER]
    scheme = request.get(_SCHEME, "bearer")
    try:
        claims = request.get(CLAIMS)
        if claims is None:
            scheme, token = credentials(request, realm, verifier)
            request[_SCHEME] = scheme
            proof = dpop_proof(request) if scheme == "dpop" else None
            claims = await verifier.verify(token, dpop_proof=proof, method=request.method,
                                           url=request_url(request))
            request[CLAIMS] = claims
        require_scopes(claims, *scopes)
        require_roles(claims, *roles)
    except InvalidToken as exc:
        log.debug("%s %s: %s: %s", request.method, request.path, type(exc).__name__, exc.detail)
        dpop = scheme == "dpop" or isinstance(exc, (InvalidDPoPBinding, InvalidDPoPProof))
        raise error_response(exc, realm, _dpop_algs(verifier) if dpop else None) from None
    return claims


_SCHEME: Any = web.RequestKey("tokensrv_scheme", str) if hasattr(web, "RequestKey") else "tokensrv_scheme"


def credentials(request: web.Request, realm: str, verifier: TokenVerifier) -> tuple[str, str]:
    """("bearer" or "dpop", the token) of the Authorization header."""
    values = request.headers.getall("Authorization", [])
    if not values or (len(values) == 1 and values[0].split(" ", 1)[0].lower() not in _SCHEMES):
        raise _challenge(realm, _dpop_algs(verifier))  # no credentials, or another scheme: no token
    match = _CREDENTIALS.fullmatch(values[0]) if len(values) == 1 else None
    if match is None:
        raise _json_error(web.HTTPBadRequest, [f"Bearer realm={_quote(realm)}, error=\"invalid_request\""],
                          "invalid_request", "the Authorization header is malformed")
    return match.group(1).lower(), match.group(2)


def dpop_proof(request: web.Request) -> str:
    """The one DPoP header of a request with the DPoP scheme (RFC 9449 §4.3: exactly one)."""
    proofs = request.headers.getall("DPoP", [])
    if len(proofs) != 1:
        raise InvalidDPoPProof("no DPoP header" if not proofs else "DPoP header repeated")
    return proofs[0]


def request_url(request: web.Request) -> str:
    """The URL the client used, as far as we know it: `public_url` and the path when configured."""
    base = request.app.get(PUBLIC_URL)
    return base + request.url.raw_path if base is not None else str(request.url)


def _dpop_algs(verifier: TokenVerifier) -> str:
    return " ".join(alg for alg in DPOP_ALGORITHMS if alg in verifier.dpop_algorithms)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _challenge(realm: str, dpop_algs: str) -> web.HTTPException:
    """RFC 6750 §3.1: a request without authentication gets no error code; RFC 9449 §7.1: a
    second challenge says DPoP is accepted too, with which algorithms."""
    return _json_error(web.HTTPUnauthorized,
                       [f"Bearer realm={_quote(realm)}", f"DPoP realm={_quote(realm)}, algs={_quote(dpop_algs)}"],
                       "unauthorized", "a bearer access token is required")


def error_response(exc: InvalidToken, realm: str, dpop_algs: str | None = None) -> web.HTTPException:
    """The answer to `exc`; with `dpop_algs`, in the DPoP scheme's challenge (RFC 9449 §7.1)."""
    scheme = "Bearer" if dpop_algs is None else "DPoP"
    challenge = f"{scheme} realm={_quote(realm)}, error={_quote(exc.error)}"
    algs = "" if dpop_algs is None else f", algs={_quote(dpop_algs)}"
    if isinstance(exc, InsufficientScope):
        return _json_error(web.HTTPForbidden, [f"{challenge}, scope={_quote(' '.join(exc.scopes))}"],
                           exc.error, exc.description)
    if isinstance(exc, InsufficientRole):
        return _json_error(web.HTTPForbidden, [], exc.error, exc.description)
    if isinstance(exc, VerifierUnavailable):
        return _json_error(web.HTTPServiceUnavailable, [], exc.error, exc.description, retry_after=1)
    if isinstance(exc, InvalidDPoPProof):
        return _json_error(web.HTTPUnauthorized, [challenge + algs], exc.error, exc.description)
    return _json_error(web.HTTPUnauthorized, [challenge + algs], "invalid_token", exc.description)


def _json_error(kind: type[web.HTTPException], challenges: list[str], error: str, description: str,
                retry_after: int | None = None) -> web.HTTPException:
    headers: CIMultiDict[str] = CIMultiDict({"Cache-Control": "no-store"})
    for challenge in challenges:  # one header each (RFC 9110 §11.6.1 allows either form)
        headers.add("WWW-Authenticate", challenge)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = json.dumps({"error": error, "error_description": description})
    return kind(text=body, content_type="application/json", headers=headers)
