"""OpenTelemetry tracing of the server: off unless the standard OTEL_* variables ask for it.

Configured means OTEL_TRACES_EXPORTER names `otlp` and/or `console`, or (with it unset) an
OTLP endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), and
OTEL_SDK_DISABLED is not `true`. OTEL_TRACES_EXPORTER=none turns it off. The service is named by
OTEL_SERVICE_NAME (else OTEL_RESOURCE_ATTRIBUTES' service.name, else "tokensrv"); the SDK reads
the rest itself (OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER, OTEL_BSP_*). OTLP is sent over
HTTP/protobuf by the `otlp` extra (opentelemetry-exporter-otlp-proto-http).

Off costs the request path nothing: tracing is decided once, when the app is built (create_app's
`tracer_provider`). Only then is a middleware installed (a SERVER span per request, continuing
an incoming W3C `traceparent`) and are the store's operations, argon2 checks and token signing
wrapped in child spans; otherwise none of this module runs after startup.

What spans carry: the method, the route pattern (never the path: it can hold ids), the status,
the authenticated client_id, the grant type and the OAuth error code; for the store, our
operation's name only, never a key or value. No secret, token, code, cookie, header value or
password ever goes into a span name, attribute or event, and exceptions are recorded by class,
never by message (a message can quote what it failed on).
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import trace

from tokensrv.server.appkeys import OAUTH_ERROR
from tokensrv.server.observe import route_of
from tokensrv.verify.tracing import client_trace_config, incoming_context, inject_traceparent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from tokensrv.oauth import Provider
    from tokensrv.store import Store
    from tokensrv.store.cache import ClientCache

__all__ = ["TRACER", "TracedStore", "TracingConfig", "TracingError", "client_trace_config", "from_environment",
           "inject_traceparent", "instrument", "server_middleware"]

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INSTRUMENTATION = "tokensrv"
EXPORTERS = ("otlp", "console")
OTLP_PROTOCOL = "http/protobuf"
# the methods a span name may carry; anything else is "_OTHER" (OpenTelemetry's HTTP conventions)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STORE_SYSTEM = "redis"  # the semantic conventions' name for the protocol Valkey speaks

TRACER = web.AppKey("tracer", trace.Tracer)


class TracingError(Exception):
    """Tracing is asked for in a way this server cannot do: one line, naming the variable."""


# ---- configuration: OTEL_* variables, read once by `tokensrv serve` ----

@dataclass(frozen=True)
class TracingConfig:
    exporters: tuple[str, ...]  # among EXPORTERS

    def start(self) -> TracerProvider:
        """A TracerProvider exporting in batches from a thread of its own: call it in each
        process that serves (a worker after the fork: threads do not survive one), and
        shutdown() it when the process stops, which sends what is still queued."""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=_resource())
        for name in self.exporters:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        return provider


def from_environment(environ: Mapping[str, str] = os.environ) -> TracingConfig | None:
    """What the OTEL_* variables ask for; None: no tracing. TracingError if it cannot be done."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = [e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if not named:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not endpoint:
            return None  # unlike the SDK's own default (otlp), tracing is off until asked for
        named = ["otlp"]
    if "none" in named:
        return None
    for name in named:
        if name not in EXPORTERS:
            raise TracingError(f"OTEL_TRACES_EXPORTER: unknown exporter {name[:40]!r} "
                               f"(tokensrv knows {', '.join(EXPORTERS)} and none)")
    if "otlp" in named:
        _check_otlp(environ)
    return TracingConfig(tuple(dict.fromkeys(named)))


def _check_otlp(environ: Mapping[str, str]) -> None:
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or OTLP_PROTOCOL)
    if protocol.strip() != OTLP_PROTOCOL:
        raise TracingError(f"OTEL_EXPORTER_OTLP_PROTOCOL: tokensrv exports OTLP over {OTLP_PROTOCOL} only, "
                           f"not {protocol[:40]!r}")
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        raise TracingError("OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: "
                           "pip install 'tokensrv[otlp]'") from None


def _resource() -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "tokensrv"}))
    return resource


def _exporter(name: str) -> Any:
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    # one JSON object per line on stdout (the log is on stderr): easy to read back, and to ship
    return ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")


# ---- the server span of each request ----

def server_middleware(tracer: trace.Tracer) -> Middleware:
    """The outermost middleware when tracing: a SERVER span around everything the others do."""

    @web.middleware
    async def trace_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        method = request.method if request.method in METHODS else "_OTHER"
        route = route_of(request)
        attributes: dict[str, Any] = {"http.request.method": method}
        if route != "unmatched":
            attributes["http.route"] = route
        name = f"{method} {route}" if route != "unmatched" else method
        with tracer.start_as_current_span(name, context=incoming_context(request.headers),
                                          kind=trace.SpanKind.SERVER, attributes=attributes,
                                          record_exception=False, set_status_on_exception=False) as span:
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:  # redirects and the like, raised rather than returned
                status = exc.status
                raise
            except asyncio.CancelledError:  # the client went away: no status was sent
                status = 0
                span.set_attribute("error.type", "cancelled")
                raise
            finally:
                _finish(span, request, status)

    return trace_request


def _finish(span: trace.Span, request: web.Request, status: int) -> None:
    if status:
        span.set_attribute("http.response.status_code", status)
    error = request.get(OAUTH_ERROR)  # set by app.error_middleware: the code, never the detail
    if error is not None:
        span.set_attribute("oauth.error", error)
    if status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(trace.StatusCode.ERROR)


def annotate(attribute: str, value: str) -> None:
    """Provider.annotate when tracing: the oauth/ code names the request's client and grant."""
    trace.get_current_span().set_attribute(attribute, value)


# ---- child spans: the store, argon2, signing ----

def instrument(provider: Provider, tracer: trace.Tracer) -> None:
    """Wrap this provider's store operations, password checks and signing in spans, on these
    objects only (another app in the process, and every untraced one, is left as it was)."""
    provider.store = TracedStore(provider.store, tracer)
    # the wait for an argon2 process and its hashing: where a slow login spends its time
    setattr(provider.passwords, "check", _async_span(tracer, "argon2.verify", provider.passwords.check))  # noqa: B010
    provider.signature = _signing_span(tracer, provider.signature)
    provider.annotate = annotate


class TracedStore:
    """The store as a traced app's protocol code sees it: each coroutine of its domains (and ping,
    upgrade_layout) runs in a CLIENT span named after the operation, `store.<method>`. The store
    itself is not changed: what holds it directly (the app's lifecycle, the key manager's locks)
    and every untraced app use it as it is. lock() is a context manager, not an operation."""

    def __init__(self, store: Store, tracer: trace.Tracer) -> None:
        self.store = store
        self._lifecycle = _traced(store, tracer)
        self.clients = _traced(store.clients, tracer)
        self.users = _traced(store.users, tracer)
        self.refresh = _traced(store.refresh, tracer)
        self.denylist = _traced(store.denylist, tracer)
        self.sessions = _traced(store.sessions, tracer)
        self.devices = _traced(store.devices, tracer)
        self.logouts = _traced(store.logouts, tracer)
        self.limits = _traced(store.limits, tracer)
        self.mfa = _traced(store.mfa, tracer)
        self.passkeys = _traced(store.passkeys, tracer)
        self.consents = _traced(store.consents, tracer)
        self.managed = _traced(store.managed, tracer)
        self.claim_rules = _traced(store.claim_rules, tracer)
        self.locks = _traced(store.locks, tracer)
        self.nonces = _traced(store.nonces, tracer)

    @property
    def client_cache(self) -> ClientCache | None:
        return self.store.client_cache

    async def ping(self) -> bool:
        return await self._lifecycle.ping()

    async def upgrade_layout(self) -> int:
        return await self._lifecycle.upgrade_layout()


D = TypeVar("D")


def _traced(domain: D, tracer: trace.Tracer) -> D:
    """`domain` behind a _Spans proxy, typed as what it wraps (the proxy answers every attribute)."""
    return cast(D, _Spans(domain, tracer))


class _Spans:
    """Answers as its target does, with each public coroutine method wrapped in a span; each
    wrapper is made on first use and kept, so a later call costs what a plain attribute does."""

    def __init__(self, target: object, tracer: trace.Tracer) -> None:
        self._target = target
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._target, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(member):
            return member
        traced = _store_span(self._tracer, name, member)
        self.__dict__[name] = traced
        return traced


def _store_span(tracer: trace.Tracer, name: str, operation: Callable[..., Awaitable[T]]
                ) -> Callable[..., Awaitable[T]]:
    attributes = {"db.system.name": STORE_SYSTEM, "db.operation.name": name}
    return _async_span(tracer, f"store.{name}", operation, attributes, trace.SpanKind.CLIENT)


def _async_span(tracer: trace.Tracer, name: str, call: Callable[..., Awaitable[T]],
                attributes: Mapping[str, Any] | None = None,
                kind: trace.SpanKind = trace.SpanKind.INTERNAL) -> Callable[..., Awaitable[T]]:
    """`call` in a span of its own; its arguments and result never go on it."""
    @functools.wraps(call)
    async def traced(*args: Any, **kwargs: Any) -> T:
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                          record_exception=False, set_status_on_exception=False) as span:
            try:
                return await call(*args, **kwargs)
            except Exception as exc:
                _failed(span, exc)
                raise
    return traced


def _signing_span(tracer: trace.Tracer, signature: Callable[[Any, bytes], bytes]) -> Callable[[Any, bytes], bytes]:
    @functools.wraps(signature)
    def traced(key: Any, signing_input: bytes) -> bytes:
        # the key's public identity only: its kid is in the JWKS anyway
        with tracer.start_as_current_span("jws.sign", attributes={"jws.alg": key.alg, "jws.kid": key.kid},
                                          record_exception=False, set_status_on_exception=False) as span:
            try:
                return signature(key, signing_input)
            except Exception as exc:
                _failed(span, exc)
                raise
    return traced


def _failed(span: trace.Span, exc: BaseException) -> None:
    name = type(exc).__qualname__
    span.set_attribute("error.type", name)
    span.set_status(trace.StatusCode.ERROR, name)
