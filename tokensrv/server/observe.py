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

from tokensrv.keys.manager import KeyManager
from tokensrv.keys.signing import next_step_due
from tokensrv.observability import metrics
from tokensrv.observability.logs import REQUEST_ID_VAR, log_fields
from tokensrv.server.appkeys import PROVIDER
from tokensrv.server.request import remote_address

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


class RequestTally:
    """This process's requests: in flight, and counted and timed per (route, method, status).

    Kept in plain ints and lists on the request path (a Prometheus counter or histogram takes a
    lock per change, and with several workers writes a memory-mapped file) and added to the
    Prometheus series every PUBLISH_INTERVAL and at each scrape, so /metrics is exact for the
    worker scraped and at most that old for the others."""
    PUBLISH_INTERVAL = 1.0

    def __init__(self, server: metrics.ServerMetrics) -> None:
        self.server = server
        self.in_flight = 0
        self._bounds = server.http_latency._upper_bounds  # the histogram's buckets, +Inf last
        # (route, method, status) -> its requests' latencies (and so their count)
        self._pending: dict[tuple[str, str, int], metrics.Observed] = {}

    def record(self, route: str, method: str, status: int, duration: float) -> None:
        pending = self._pending.get((route, method, status))
        if pending is None:  # bounded: routes, methods and statuses are each a short list
            pending = self._pending[route, method, status] = metrics.Observed(self._bounds)
        pending.add(duration)

    def publish(self) -> None:
        """This worker's requests, and its store round trips (metrics.ServerMetrics.timed), into
        the Prometheus series."""
        self.server.in_flight.set(self.in_flight)
        pending, self._pending = self._pending, {}
        for (route, method, status), observed in pending.items():
            requests, latency = self.server.http(route, method, status)
            requests.inc(observed.count)
            observed.publish_to(latency)
        self.server.publish()

    async def publish_forever(self) -> None:
        try:
            while True:
                self.publish()
                await asyncio.sleep(self.PUBLISH_INTERVAL)
        finally:
            self.publish()  # the last requests too, when the server stops


TALLY = web.AppKey("tally", RequestTally)
METRICS = web.AppKey("metrics", metrics.ServerMetrics)


async def tally_ctx(app: web.Application) -> AsyncIterator[None]:
    app[TALLY] = tally = RequestTally(app[METRICS])
    task = asyncio.create_task(tally.publish_forever())
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
    tally = request.app[TALLY]
    tally.in_flight += 1
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
        tally.in_flight -= 1
        _record(request, tally, rid, status, time.perf_counter() - started)
        REQUEST_ID_VAR.reset(token)


def _record(request: web.Request, tally: RequestTally, rid: str, status: int, duration: float) -> None:
    route = route_of(request)
    method = request.method if request.method in _METHODS else "OTHER"
    tally.record(route, method, status, duration)
    if status == 429:
        tally.server.rate_limited.labels(route).inc()
    # Every verifier and load balancer polls these: their successful answers are counted in the
    # metrics above but logged at debug level only (TOKENSRV_LOG_LEVEL=debug), so they neither
    # drown the log nor cost each poll a formatted line.
    level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
    if not access.isEnabledFor(level):
        return
    # the path, never the query string: queries carry codes, state and id_token_hint
    log_fields(access, level, "%s %s %d", {
        "request_id": rid, "method": method, "route": route, "path": request.path[:MAX_LOGGED_PATH],
        "status": status, "duration_ms": round(duration * 1000, 2), "remote": remote_address(request)},
        method, route, status)


def describe_keys(keys: KeyManager) -> tuple[list[tuple[str, str]], float | None]:
    due = next_step_due(keys.ring.keys, keys.settings)
    return [(k.kid, k.state) for k in keys.ring.keys], None if due is None else max(0, due - keys.now())


async def metrics_endpoint(request: web.Request) -> web.Response:
    request.app[TALLY].publish()  # this worker's share exact (this scrape's own request aside)
    keys = request.app[PROVIDER].keys
    await keys.reload()  # cheap when keys/ did not change; a scrape then sees a step another worker made
    body = metrics.exposition(request.app[METRICS], metrics.KeyCollector(lambda: describe_keys(keys)))
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"})
