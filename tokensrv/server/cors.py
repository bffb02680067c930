"""CORS (the Fetch standard) for browser applications on other origins: the token, revocation and
UserInfo endpoints, for the web origins registered for the client concerned (a client's
`allowed_origins`, oauth/clients/origins.py).

- A preflight (OPTIONS with Access-Control-Request-Method) carries no client: it is answered for
  an origin registered for ANY client (OriginIndex, rebuilt when a client changes), which says
  only that the real request may be sent; the real request is then decided by its own client.
- The real request: `Access-Control-Allow-Origin: <origin>` only when the Origin is one of the
  client's: token and revocation, the client the request names; UserInfo, the client its access
  token was issued to. Error answers carry it too, so that the application can read the error.
- Never Access-Control-Allow-Credentials: the apps send their tokens themselves, and the
  first-party refresh cookie (oauth/endpoints/refresh_cookie.py) is for same-origin apps only.
- The device authorization, PAR, introspection and registration endpoints are back-channel (a
  device, a confidential client, a resource server, an operator's tool): no CORS. Interactive
  pages are navigations, never fetched: no CORS either. Discovery and the JWKS are public: `*`.

Only the routes concerned are wrapped (no middleware): a request without an Origin header pays
one header look-up.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from tokensrv.errors import OAuthError
from tokensrv.oauth import Provider
from tokensrv.server.request import provider
from tokensrv.store.cache import CLIENT_TTL

ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
EXPOSE_HEADERS = "DPoP-Nonce, WWW-Authenticate"
MAX_AGE = "600"  # seconds a browser may keep a preflight's answer (Chromium keeps at most 7200)
PUBLIC = {"Access-Control-Allow-Origin": "*"}  # discovery and JWKS: readable from any page

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ClientOf = Callable[[web.Request], Awaitable[str | None]]


class OriginIndex:
    """The origins registered for any client, for preflights. Kept until the client cache
    forgets anything (a client added, changed or removed, on any instance: store/cache.py), and
    at most CLIENT_TTL seconds; read from the store each time while the cache does not follow
    changes (it could have missed one)."""

    def __init__(self, ttl: float = CLIENT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._origins: frozenset[str] = frozenset()
        self._stamp: tuple[int, float] | None = None  # (cache generation, expiry) of _origins
        self._lock = asyncio.Lock()  # one rebuild at a time: the others wait for it

    async def has(self, p: Provider, origin: str) -> bool:
        cache = p.store.client_cache
        async with self._lock:
            fresh = self._stamp is not None and cache is not None and cache.live \
                and self._stamp[0] == cache.generation and self._stamp[1] > self._clock()
            if not fresh:
                generation = cache.generation if cache is not None else 0
                clients = await p.store.clients.list_clients()
                self._origins = frozenset(o for c in clients for o in c.allowed_origins)
                self._stamp = (generation, self._clock() + self._ttl)
        return origin in self._origins


ORIGINS = web.AppKey("cors_origins", OriginIndex)


def preflight(methods: str) -> Handler:
    """The OPTIONS handler of an endpoint answering `methods` (e.g. "GET, POST")."""
    allowed = {m.strip() for m in methods.split(",")}

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Allow": f"{methods}, OPTIONS", "Vary": "Origin"}
        origin = request.headers.get("Origin")
        method = request.headers.get("Access-Control-Request-Method")
        if origin is not None and method in allowed and await request.app[ORIGINS].has(provider(request), origin):
            headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": methods,
                            "Access-Control-Allow-Headers": ALLOW_HEADERS, "Access-Control-Max-Age": MAX_AGE})
        # refused: no Access-Control-* header, and the browser does not send the request
        return web.Response(status=204, headers=headers)
    return answer


def cross_origin(handler: Handler, client_of: ClientOf) -> Handler:
    """`handler`, answering with CORS headers when the request's Origin is registered for the
    client `client_of` finds (None: no client, no CORS); unchanged for a request without Origin."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        try:
            response = await handler(request)
        except OAuthError as exc:  # the error middleware answers it, with these headers
            exc.headers = {**exc.headers, **await _headers(request, origin, client_of)}
            raise
        response.headers.update(await _headers(request, origin, client_of))
        return response
    return wrapped


async def _headers(request: web.Request, origin: str, client_of: ClientOf) -> dict[str, str]:
    headers = {"Vary": "Origin"}  # the answer depends on it (a cache must not serve it to others)
    client_id = await client_of(request)
    if client_id is None:
        return headers
    client = await provider(request).store.clients.get_client(client_id)
    if client is not None and origin in client.allowed_origins:
        headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE_HEADERS})
    return headers


def setup_cors(app: web.Application, routes: dict[str, str]) -> None:
    """Preflights for each path of `routes` (path -> its methods)."""
    app[ORIGINS] = OriginIndex()
    for path, methods in routes.items():
        app.router.add_route("OPTIONS", path, preflight(methods))
