"""OpenTelemetry for tokensrv.verify, through opentelemetry-api only (a no-op without an SDK).

A service that has set up an OpenTelemetry SDK (a TracerProvider of its own) before it builds
its verifier and calls `middleware.setup()` gets spans: the JWKS and discovery fetches as CLIENT
spans carrying W3C `traceparent` to tokensrv, so tokensrv's server span is their child, and one
"tokensrv.verify" span per verified request with its outcome. A service without one pays
nothing: whether to trace is decided once, when those are built, and nothing here runs after.

Neither a token nor any header value is ever put on a span; an outbound URL loses its query.
opentelemetry-api is optional (tokensrv-verify's `tracing` extra; the server installs it): without
it, tracer_for() is None and nothing else here is called.
tokensrv's server reuses this module (tokensrv/tracing.py); this one imports no other tokensrv module.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp

try:
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ModuleNotFoundError:  # tokensrv-verify's `tracing` extra is not installed: nothing is traced
    INSTALLED = False
else:
    INSTALLED = True
    # W3C Trace Context (traceparent, tracestate) and nothing else: baggage is not carried across
    W3C = TraceContextTextMapPropagator()
INSTRUMENTATION = "tokensrv.verify"
# aiohttp hands each request's trace_request_ctx to the TraceConfig: a span name for it
SPAN_NAME = "span_name"


def tracer_for(tracer_provider: trace.TracerProvider | None = None,
               name: str = INSTRUMENTATION) -> trace.Tracer | None:
    """A tracer if tracing is configured: `tracer_provider`, or the process's global one when an
    SDK has been installed as it (trace.set_tracer_provider). None otherwise (or without
    opentelemetry-api): trace nothing."""
    if tracer_provider is None:
        if not INSTALLED:
            return None
        tracer_provider = trace.get_tracer_provider()
        # the API's placeholders until (unless) an SDK is installed
        if isinstance(tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return None
    return tracer_provider.get_tracer(name)


def inject_traceparent(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add `traceparent` (and `tracestate`) for the current span, if one is being recorded, to
    the headers of an outbound request. Writes nothing when no span is current."""
    W3C.inject(headers)
    return headers


def incoming_context(headers: Any) -> context.Context | None:
    """The remote parent named by a request's `traceparent`, or None when it names none."""
    if "traceparent" not in headers:
        return None
    return W3C.extract(headers)


def service_parent(headers: Any) -> context.Context | None:
    """For a span inside a service's request: None (the current context) when a span is current,
    the service's own request span, else the caller's `traceparent`."""
    return None if trace.get_current_span().get_span_context().is_valid else incoming_context(headers)


def safe_url(url: Any) -> str:
    """scheme://host[:port]/path: no user info, query or fragment (where secrets would be)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def client_trace_config(tracer: trace.Tracer) -> aiohttp.TraceConfig:
    """For `aiohttp.ClientSession(trace_configs=[...])`: a CLIENT span per request the session
    makes, named by the method (or the request's trace_request_ctx={"span_name": ...}), with
    `traceparent` added to its headers. Only sessions built with it pay for it."""
    config = aiohttp.TraceConfig()

    async def on_start(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestStartParams) -> None:
        wanted = ctx.trace_request_ctx or {}
        url = params.url
        span = tracer.start_span(wanted.get(SPAN_NAME, params.method), kind=trace.SpanKind.CLIENT, attributes={
            "http.request.method": params.method, "server.address": url.host or "",
            "server.port": url.port or 0, "url.full": safe_url(url)})
        ctx.span = span
        W3C.inject(params.headers, context=trace.set_span_in_context(span))

    async def on_end(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                     params: aiohttp.TraceRequestEndParams) -> None:
        status = params.response.status
        ctx.span.set_attribute("http.response.status_code", status)
        if status >= 400:
            ctx.span.set_attribute("error.type", str(status))
            ctx.span.set_status(trace.StatusCode.ERROR)
        ctx.span.end()

    async def on_error(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestExceptionParams) -> None:
        # the class only: an exception's text can hold a URL with a query
        ctx.span.set_attribute("error.type", type(params.exception).__qualname__)
        ctx.span.set_status(trace.StatusCode.ERROR, type(params.exception).__qualname__)
        ctx.span.end()

    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_error)
    return config
