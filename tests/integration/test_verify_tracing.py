"""tokensrv.verify traced, against tokensrv traced, over real HTTP on loopback: the verifier's
JWKS and discovery fetches are CLIENT spans whose traceparent makes tokensrv's SERVER spans
their children; the middleware's "tokensrv.verify" span continues the caller's trace and says
the outcome, never the token. Each side has its own TracerProvider, as two services would."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.helpers import oauth as oauth_helpers
from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.ports import free_port
from tests.helpers.verify import AUDIENCE
from tokensrv.config import Settings
from tokensrv.server.app import create_app
from tokensrv.verify import TokenVerifier
from tokensrv.verify.middleware import bearer_middleware, claims_of, setup
from tokensrv.verify.tracing import tracer_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Traced:
    """A TracerProvider exporting to memory as each span ends."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self, name: str | None = None, kind: SpanKind | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans()
                if (name is None or s.name == name) and (kind is None or s.kind is kind)]


@pytest.fixture
def issuer_side() -> Iterator[Traced]:
    side = Traced()
    yield side
    side.provider.shutdown()


@pytest.fixture
def service_side() -> Iterator[Traced]:
    side = Traced()
    yield side
    side.provider.shutdown()


@pytest.fixture
async def issuer(aiohttp_client: Any, redis: Redis, clock: FakeClock, settings: Settings,
                 issuer_side: Traced) -> TestClient:
    port = free_port()  # a known port: the issuer URL in discovery and tokens is the real one
    app = create_app(dataclasses.replace(settings, issuer=f"http://127.0.0.1:{port}"), clock=clock,
                     run_schedule=False, tracer_provider=issuer_side.provider)
    client: TestClient = await aiohttp_client(app, server_kwargs={"port": port})
    await provider_of(client).keys.tick()
    return client


@pytest.fixture
async def verifier(issuer: TestClient, clock: FakeClock, service_side: Traced) -> AsyncIterator[TokenVerifier]:
    verifier = TokenVerifier(provider_of(issuer).settings.issuer, AUDIENCE, clock=clock,
                             registry=CollectorRegistry(), tracer_provider=service_side.provider)
    yield verifier
    await verifier.close()


async def orders_handler(request: web.Request) -> web.Response:
    return web.json_response({"for": claims_of(request)["client_id"]})


async def orders_app(aiohttp_client: Any, verifier: TokenVerifier) -> TestClient:
    app = web.Application()
    setup(app, verifier, realm="orders")
    app.router.add_get("/orders", orders_handler)
    client: TestClient = await aiohttp_client(app)
    return client


async def access_token(issuer: TestClient) -> str:
    svc = await oauth_helpers.add_client(issuer, "svc", audience=AUDIENCE)
    status, body, _ = await oauth_helpers.token(issuer, svc, grant_type="client_credentials")
    assert status == 200, body
    return str(body["access_token"])


def child_of(issuer_side: Traced, client_span: ReadableSpan) -> ReadableSpan:
    """The issuer's SERVER span that the verifier's CLIENT span caused (through traceparent)."""
    found = [s for s in issuer_side.spans(kind=SpanKind.SERVER)
             if s.parent is not None and s.parent.span_id == client_span.context.span_id]
    assert len(found) == 1, [(s.name, s.parent) for s in issuer_side.spans(kind=SpanKind.SERVER)]
    assert found[0].context.trace_id == client_span.context.trace_id and found[0].parent.is_remote  # type: ignore[union-attr]
    return found[0]


async def test_jwks_and_discovery_fetches_are_client_spans_whose_server_spans_are_their_children(
        verifier: TokenVerifier, issuer_side: Traced, service_side: Traced) -> None:
    await verifier.start()
    assert verifier.keys.loaded
    discovery = service_side.spans("GET discovery", SpanKind.CLIENT)
    jwks = service_side.spans("GET jwks", SpanKind.CLIENT)
    assert len(discovery) == 1 and len(jwks) == 1
    assert jwks[0].attributes is not None
    assert dict(jwks[0].attributes) == {
        "http.request.method": "GET", "server.address": "127.0.0.1",
        "server.port": int(verifier.issuer.rsplit(":", 1)[1]), "url.full": verifier.issuer + "/.well-known/jwks.json",
        "http.response.status_code": 200}
    assert child_of(issuer_side, discovery[0]).name == "GET /.well-known/openid-configuration"
    assert child_of(issuer_side, jwks[0]).name == "GET /.well-known/jwks.json"


async def test_the_verify_span_continues_the_callers_trace_and_says_the_outcome(
        aiohttp_client: Any, issuer: TestClient, verifier: TokenVerifier, service_side: Traced) -> None:
    token = await access_token(issuer)
    await verifier.start()
    orders = await orders_app(aiohttp_client, verifier)
    service_side.exporter.clear()
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    resp = await orders.get("/orders", headers={"Authorization": f"Bearer {token}", "traceparent": traceparent})
    assert resp.status == 200 and (await resp.json()) == {"for": "svc"}
    [span] = service_side.spans("tokensrv.verify")
    assert span.attributes is not None
    assert dict(span.attributes) == {"tokensrv.verify.outcome": "valid", "oauth.client_id": "svc"}
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID

    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    resp = await orders.get("/orders", headers={"Authorization": f"Bearer {tampered}"})
    assert resp.status == 401
    resp = await orders.get("/orders", headers={"Authorization": "Bearer"})
    assert resp.status == 400
    outcomes = [dict(s.attributes or {}).get("tokensrv.verify.outcome") for s in service_side.spans("tokensrv.verify")]
    assert outcomes == ["valid", "invalid_token", "invalid_request"]
    said = repr([(s.name, dict(s.attributes or {}), s.events) for s in service_side.spans()])
    for piece in {token, tampered, *token.split(".")}:
        assert piece not in said


async def test_a_key_fetched_during_a_verification_is_in_that_request_trace(
        aiohttp_client: Any, issuer: TestClient, verifier: TokenVerifier, issuer_side: Traced,
        service_side: Traced) -> None:
    """Operators follow one request across services: the caller's trace, the verification, the
    JWKS fetch it needed (the verifier was not started: it knows no key), tokensrv's answer."""
    token = await access_token(issuer)
    orders = await orders_app(aiohttp_client, verifier)
    resp = await orders.get("/orders", headers={"Authorization": f"Bearer {token}",
                                                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert resp.status == 200, await resp.text()
    [verify] = service_side.spans("tokensrv.verify")
    [fetch] = service_side.spans("GET jwks", SpanKind.CLIENT)
    assert fetch.parent is not None and fetch.parent.span_id == verify.context.span_id
    served = child_of(issuer_side, fetch)
    assert format(served.context.trace_id, "032x") == TRACE_ID


async def test_without_a_tracer_provider_nor_a_global_sdk_nothing_is_traced(
        aiohttp_client: Any, issuer: TestClient, clock: FakeClock) -> None:
    assert tracer_for(None) is None  # the API's placeholder provider: no SDK set up globally
    plain = TokenVerifier(provider_of(issuer).settings.issuer, AUDIENCE, clock=clock, registry=CollectorRegistry())
    try:
        app = web.Application()
        setup(app, plain, realm="orders")
        assert list(app.middlewares) == [bearer_middleware]
        await plain.start()
        session = plain.fetcher._session  # type: ignore[attr-defined]
        assert session is not None and not session.trace_configs
    finally:
        await plain.close()
