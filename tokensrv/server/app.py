"""create_app(settings) -> web.Application: typed AppKeys, connections in cleanup_ctx, middlewares."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tokensrv import errors
from tokensrv.config import Settings
from tokensrv.keys.manager import KeyManager
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.keys import ClientKeys
from tokensrv.oauth.endpoints.discovery import metadata_bytes
from tokensrv.observability.metrics import server_metrics
from tokensrv.passwords import QUEUE_PER_PROCESS, PasswordPool
from tokensrv.server.admin.app import ADMIN_APP, ADMIN_SOCKET, admin_listener_ctx, create_admin_app
from tokensrv.server.appkeys import (
    CLOCK,
    DELIVER_LOGOUTS,
    DISCOVERY,
    NO_STORE,
    OAUTH_ERROR,
    PROVIDER,
    RUN_SCHEDULE,
    SETTINGS,
    error_response,
)
from tokensrv.server.limits import body_middleware, server_header
from tokensrv.server.observe import METRICS, metrics_endpoint, observe_middleware, tally_ctx
from tokensrv.server.outbound.client_jwks import fetcher
from tokensrv.server.outbound.logout_delivery import LogoutDelivery
from tokensrv.server.routes import setup_routes
from tokensrv.server.tracing import TRACER, client_trace_config, instrument, server_middleware
from tokensrv.store.cache import CachingStore
from tokensrv.store.connect import STORE_TIMEOUT, open_redis

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["CLOCK", "DELIVER_LOGOUTS", "DISCOVERY", "NO_STORE", "PROVIDER", "RUN_SCHEDULE", "SETTINGS",
           "STORE_TIMEOUT", "create_app", "open_redis"]  # the keys and the store's connection, for callers of the app

log = logging.getLogger("tokensrv")

MAX_BODY = 64 * 1024


def create_app(settings: Settings, clock: Callable[[], float] = time.time,
               run_schedule: bool = True, deliver_logouts: bool | None = None,
               tracer_provider: TracerProvider | None = None,
               admin_socket: socket.socket | None = None) -> web.Application:
    """`run_schedule`: key rotation runs here; `deliver_logouts` (default: as `run_schedule`):
    this process delivers back-channel logout tokens from the shared queue; `tracer_provider`:
    trace requests with it (tokensrv/server/tracing.py); None, the default: no tracing, and nothing of
    it on the request path; `admin_socket`: the admin API listens there (a worker's; else on
    TOKENSRV_ADMIN_PORT if set: server/admin/app.py)."""
    # observe_middleware is outermost: it sees the answers error_middleware makes too
    middlewares: list[Middleware] = [observe_middleware, error_middleware, body_middleware]
    if tracer_provider is not None:  # outside them all: its span covers what they do
        tracer = tracer_provider.get_tracer("tokensrv")
        middlewares.insert(0, server_middleware(tracer))
    # client_max_fields=0: aiohttp's own limit answers 413 "too large"; oauth/params.py counts the
    # parameters instead, after the repeats, with RFC 6749 errors (the body limit bounds the work)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY, client_max_fields=0)
    app.on_response_prepare.append(server_header)
    if tracer_provider is not None:
        app[TRACER] = tracer
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = server_metrics()  # made now, not at import: see tokensrv/observability/metrics.py
    app[RUN_SCHEDULE] = run_schedule
    app[DELIVER_LOGOUTS] = run_schedule if deliver_logouts is None else deliver_logouts
    algorithms = sorted({"RS256", settings.key_algorithm})
    app[DISCOVERY] = metadata_bytes(settings, algorithms)
    app.cleanup_ctx.append(tally_ctx)
    app.cleanup_ctx.append(provider_ctx)
    app.cleanup_ctx.append(schedule_ctx)
    app.cleanup_ctx.append(logout_delivery_ctx)
    app[ADMIN_SOCKET] = admin_socket
    app[ADMIN_APP] = create_admin_app(app, middlewares[:-1])  # its own body middleware, after the caller's
    app.cleanup_ctx.append(admin_listener_ctx)
    setup_routes(app)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


async def provider_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = open_redis(settings.redis_url)
    # client records cached in memory, dropped when a change is announced
    store = CachingStore(redis, durable_replicas=settings.durable_replicas)
    clock = app[CLOCK]
    keys = KeyManager(settings, store.locks, lambda: int(clock()))
    processes = argon2_threads(settings)
    passwords = PasswordPool(processes, on_depth=app[METRICS].argon2_queue.set,
                             queue=settings.argon2_queue or QUEUE_PER_PROCESS * processes)
    tracer = app.get(TRACER)
    # for private_key_jwt clients' jwks_uri; when tracing, each fetch is a span carrying traceparent
    http = aiohttp.ClientSession(trust_env=False,
                                 trace_configs=None if tracer is None else [client_trace_config(tracer)])
    app[PROVIDER] = Provider(settings, store, keys, passwords, clock,
                             client_keys=ClientKeys(fetcher(http), clock))
    if tracer is not None:
        instrument(app[PROVIDER], tracer)  # child spans: the store, argon2, signing
    await keys.reload(force=True)
    try:
        await app[PROVIDER].store.upgrade_layout()  # an earlier release's deny-list, once per store
    except (RedisError, OSError) as exc:  # the store is down: serve 503s as usual, convert next start
        log.warning("could not check the store's layout (%s); will at the next start", type(exc).__name__)
    store.start_following()
    # serve once a token request can be answered from the cache as well: /readyz says the same
    if not await store.client_cache.wait_live(STORE_TIMEOUT):
        log.warning("not following client changes yet: /readyz answers 503 until it does")
    yield
    await store.stop_following()
    await http.close()
    passwords.close()
    await redis.aclose()


def argon2_threads(settings: Settings) -> int:
    """Argon2 worker processes for one server process: TOKENSRV_ARGON2_THREADS (the name is older
    than the processes), else the cores this process may run on, shared among the server's
    workers (`serve --workers N`: each has its own pool): more hashing than cores would only make
    each login slower, and take cores from token requests."""
    if settings.argon2_threads:
        return settings.argon2_threads
    try:
        cores = len(os.sched_getaffinity(0))  # honours taskset and cpusets, unlike os.cpu_count()
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // settings.workers)


async def schedule_ctx(app: web.Application) -> AsyncIterator[None]:
    """Key rotation runs inside the server; with several instances, one performs each step."""
    if not app[RUN_SCHEDULE]:
        yield
        return
    keys = app[PROVIDER].keys
    if keys.ring.signing is None:
        # a new deployment: make the first keys before the first request can ask for them
        with contextlib.suppress(RedisError, OSError):
            await keys.tick()
    task = asyncio.create_task(keys.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def logout_delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every server process delivers back-channel logouts; the store's consumer group gives each
    job to one of them (tokensrv/server/outbound/logout_delivery.py)."""
    if not app[DELIVER_LOGOUTS]:
        yield
        return
    # its own HTTP client: no cookies, no proxies from the environment (the URIs are the clients')
    tracer = app.get(TRACER)  # when tracing: each delivery a CLIENT span, traceparent sent along
    async with aiohttp.ClientSession(trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                                     trace_configs=None if tracer is None else [client_trace_config(tracer)]) as http:
        delivery = LogoutDelivery(app[PROVIDER], http)
        task = asyncio.create_task(delivery.run(), name="tokensrv-backchannel-logout")
        yield
        delivery.stop()  # a cancellation alone can be lost inside the blocking read (see stop)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


_HTTP_ERRORS: dict[int, type[errors.OAuthError]] = {404: errors.NotFound, 413: errors.PayloadTooLarge}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """OAuthError -> RFC 6749 JSON; store failure -> 503 (fail closed); anything else -> bare 500."""
    try:
        return await handler(request)
    except errors.OAuthError as exc:
        if exc.status >= 500 or exc.detail:
            log.info("%s %s: %s (%s)", request.method, request.path, exc.error, exc.detail)
        return answer(request, exc)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("%s %s: store unreachable: %s", request.method, request.path, type(exc).__name__)
        return answer(request, errors.TemporarilyUnavailable("store unreachable"))
    except web.HTTPMethodNotAllowed as exc:  # the router's answer: keep the methods it names
        return answer(request, errors.MethodNotAllowed(exc.allowed_methods, exc.reason))
    except web.HTTPException as exc:
        mapped = _HTTP_ERRORS.get(exc.status)
        if mapped is None:
            raise
        return answer(request, mapped(exc.reason))
    except RedisError:
        log.exception("%s %s: store error", request.method, request.path)
        return answer(request, errors.TemporarilyUnavailable("store error"))
    except Exception:
        log.exception("%s %s: unhandled error", request.method, request.path)
        return answer(request, errors.OAuthError("unhandled"))


def answer(request: web.Request, exc: errors.OAuthError) -> web.Response:
    request[OAUTH_ERROR] = exc.error  # the code alone, for the request's span (tracing.py)
    return error_response(exc)
