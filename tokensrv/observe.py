"""The request middleware (request id, one log line, HTTP metrics) and the /metrics endpoint."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter, Histogram

from . import metrics
from .appkeys import PROVIDER
from .keys import next_step_due
from .logs import REQUEST_ID_VAR
from .rotation import KeyManager
from .routes import remote_address

access = logging.getLogger("tokensrv.access")

REQUEST_ID = "X-Request-ID"
# short and printable: anything else (control characters, a whole JWT) is replaced, not logged
_GOOD_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_LOGGED_PATH = 200
QUIET_ROUTES = frozenset({"/.well-known/jwks.json", "/.well-known/openid-configuration",
                          "/.well-known/oauth-authorization-server", "/healthz", "/readyz", "/metrics"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID if it is a short printable token (a proxy's, to join logs), else ours."""
    if incoming and _GOOD_ID.fullmatch(incoming):
        return incoming
    return f"{random.getrandbits(64):016x}"  # an id to join log lines by, not a secret


def route_of(request: web.Request) -> str:
    """The matched route's canonical path: bounded label values, and never a query or a raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


class InFlight:
    """Requests being handled by this process. Counted in a plain int (a Prometheus gauge locks on
    every change, twice per request) and copied to the gauge every PUBLISH_INTERVAL and at each
    scrape, so /metrics is exact for the worker scraped and at most that old for the others."""
    PUBLISH_INTERVAL = 1.0

    def __init__(self) -> None:
        self.count = 0

    def publish(self) -> None:
        metrics.IN_FLIGHT.set(self.count)

    async def publish_forever(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(self.PUBLISH_INTERVAL)


IN_FLIGHT = web.AppKey("in_flight", InFlight)


async def in_flight_ctx(app: web.Application) -> AsyncIterator[None]:
    app[IN_FLIGHT] = in_flight = InFlight()
    task = asyncio.create_task(in_flight.publish_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: every answer, error pages included, gets counted, timed, logged and an X-Request-ID."""
    rid = request_id(request.headers.get(REQUEST_ID))
    token = REQUEST_ID_VAR.set(rid)
    started, status = time.perf_counter(), 500
    in_flight = request.app[IN_FLIGHT]
    in_flight.count += 1
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID] = rid
        return response
    except web.HTTPException as exc:  # redirects and the like, raised rather than returned
        status = exc.status
        exc.headers[REQUEST_ID] = rid
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer (nginx's convention)
        raise
    finally:
        in_flight.count -= 1
        _record(request, rid, status, time.perf_counter() - started)
        REQUEST_ID_VAR.reset(token)


# the labelled series of each (route, method, status) seen: labels() is a locked lookup per call
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series_of(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    found = _series.get((route, method, status))
    if found is None:  # bounded: routes, methods and statuses are each a short list
        found = _series[route, method, status] = (metrics.HTTP_REQUESTS.labels(route, method, str(status)),
                                                  metrics.HTTP_LATENCY.labels(route))
    return found


def _record(request: web.Request, rid: str, status: int, duration: float) -> None:
    route = route_of(request)
    method = request.method if request.method in _METHODS else "OTHER"
    requests, latency = _series_of(route, method, status)
    requests.inc()
    latency.observe(duration)
    if status == 429:
        metrics.RATE_LIMITED.labels(route).inc()
    # Every verifier and load balancer polls these: their successful answers are counted in the
    # metrics above but logged at debug level only (TOKENSRV_LOG_LEVEL=debug), so they neither
    # drown the log nor cost each poll a formatted line.
    level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
    if not access.isEnabledFor(level):
        return
    # the path, never the query string: queries carry codes, state and id_token_hint
    access.log(level, "%s %s %d", method, route, status, extra={"fields": {
        "request_id": rid, "method": method, "route": route, "path": request.path[:MAX_LOGGED_PATH],
        "status": status, "duration_ms": round(duration * 1000, 2), "remote": remote_address(request)}})


def describe_keys(keys: KeyManager) -> tuple[list[tuple[str, str]], float | None]:
    due = next_step_due(keys.ring.keys, keys.settings)
    return [(k.kid, k.state) for k in keys.ring.keys], None if due is None else max(0, due - keys.now())


async def metrics_endpoint(request: web.Request) -> web.Response:
    request.app[IN_FLIGHT].publish()  # this worker's share exact (this scrape included)
    keys = request.app[PROVIDER].keys
    await keys.reload()  # cheap when keys/ did not change; a scrape then sees a step another worker made
    body = metrics.exposition(metrics.KeyCollector(lambda: describe_keys(keys)))
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"})
