"""OpenTelemetry tracing of the server (tokensrv/server/tracing.py), with the SDK's in-memory exporter
on a TracerProvider of the test app's own: a SERVER span per request with the route, status,
grant type and authenticated client, child spans for the store, argon2 and signing in the same
trace, an incoming traceparent continued, a 4xx and a store outage described, no secret on any
span; and an app built without a provider has none of it installed."""
from __future__ import annotations

import base64
import dataclasses
import inspect
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from redis.asyncio import Redis

from tests.helpers import assertion as assertion_helpers
from tests.helpers import oauth as oauth_helpers
from tests.helpers import sso as sso_helpers
from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.ports import free_port
from tokensrv.admin import operations as admin
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.config import Settings
from tokensrv.keys.signing import jws_signature
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.server.app import create_app, error_middleware
from tokensrv.server.limits import body_middleware
from tokensrv.server.observe import observe_middleware
from tokensrv.server.tracing import TRACER, TracedStore
from tokensrv.store import Store, User
from tokensrv.store.cache import CachingStore
from tokensrv.store.redis import RedisStore

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


async def traced_client(aiohttp_client: Any, settings: Settings, clock: FakeClock,
                        tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> TestClient:
    app = create_app(settings, clock=clock, run_schedule=False, tracer_provider=tracer_provider)
    client: TestClient = await aiohttp_client(app)
    await provider_of(client).keys.tick()
    exporter.clear()  # what starting up did
    return client


@pytest.fixture
async def client(aiohttp_client: Any, redis: Redis, settings: Settings, clock: FakeClock,
                 tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> TestClient:
    return await traced_client(aiohttp_client, settings, clock, tracer_provider, exporter)


def server_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name and s.kind is SpanKind.SERVER]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def children_of(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    """Every span below `parent`, at any depth."""
    spans = exporter.get_finished_spans()
    below, ids = [], {parent.context.span_id}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        if span.parent is not None and span.parent.span_id in ids:
            below.append(span)
            ids.add(span.context.span_id)
    return below


def names(spans: Iterable[ReadableSpan]) -> set[str]:
    return {s.name for s in spans}


async def test_client_credentials_span_names_grant_and_client_with_store_and_signing_children(
        client: TestClient, exporter: InMemorySpanExporter) -> None:
    svc = await oauth_helpers.add_client(client, "svc")
    exporter.clear()
    status, body, _ = await oauth_helpers.token(client, svc, grant_type="client_credentials")
    assert status == 200, body

    span = server_span(exporter, "POST /oauth2/token")
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "http.request.method": "POST", "http.route": "/oauth2/token", "http.response.status_code": 200,
        "oauth.grant_type": "client_credentials", "oauth.client_id": "svc"}
    assert span.parent is None and span.status.status_code is StatusCode.UNSET
    below = children_of(exporter, span)
    assert {"store.get_client", "jws.sign"} <= names(below)
    assert {s.context.trace_id for s in below} == {span.context.trace_id}
    store = next(s for s in below if s.name == "store.get_client")
    assert store.kind is SpanKind.CLIENT and store.attributes is not None
    assert dict(store.attributes) == {"db.system.name": "redis", "db.operation.name": "get_client"}
    sign = next(s for s in below if s.name == "jws.sign")
    assert sign.parent is not None and sign.parent.span_id == span.context.span_id
    assert sign.attributes is not None and sign.attributes["jws.alg"] == "RS256"


async def test_code_flow_and_refresh_are_traced_with_their_grants(client: TestClient,
                                                                  exporter: InMemorySpanExporter) -> None:
    app = await sso_helpers.add_app(client, "web")
    await sso_helpers.add_user(client)
    exporter.clear()
    flow, answer = await sso_helpers.sign_in(client, app)
    login = server_span(exporter, "POST /login")
    assert login.attributes is not None and login.attributes["http.response.status_code"] == 303
    assert "argon2.verify" in names(children_of(exporter, login))
    authorize = server_span(exporter, "GET /oauth2/authorize")
    assert authorize.attributes is not None and authorize.attributes["http.response.status_code"] == 303

    exporter.clear()
    status, tokens = await sso_helpers.redeem(client, flow, answer["code"])
    assert status == 200, tokens
    redeemed = server_span(exporter, "POST /oauth2/token")
    assert redeemed.attributes is not None
    assert redeemed.attributes["oauth.grant_type"] == "authorization_code"
    assert redeemed.attributes["oauth.client_id"] == "web"
    assert {"store.take_code", "store.create_family", "jws.sign"} <= names(children_of(exporter, redeemed))

    exporter.clear()
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": "web",
                                                    "refresh_token": tokens["refresh_token"]})
    assert resp.status == 200, await resp.text()
    refreshed = server_span(exporter, "POST /oauth2/token")
    assert refreshed.attributes is not None and refreshed.attributes["oauth.grant_type"] == "refresh_token"
    assert "store.rotate_with_user" in names(children_of(exporter, refreshed))


async def test_invalid_client_is_a_4xx_with_its_error_code_and_no_client_id(
        client: TestClient, exporter: InMemorySpanExporter) -> None:
    await oauth_helpers.add_client(client, "svc")
    exporter.clear()
    status, body, _ = await oauth_helpers.post(client, "/oauth2/token", {"grant_type": "client_credentials"},
                                               oauth_helpers.basic("svc", "not-the-secret"))
    assert status == 401 and body["error"] == "invalid_client"
    span = server_span(exporter, "POST /oauth2/token")
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 401
    assert span.attributes["oauth.error"] == "invalid_client"
    assert span.attributes["oauth.grant_type"] == "client_credentials"
    assert "oauth.client_id" not in span.attributes  # not authenticated: only a claim
    assert "error.type" not in span.attributes and span.status.status_code is StatusCode.UNSET


async def test_unknown_route_is_named_by_its_method_only(client: TestClient,
                                                         exporter: InMemorySpanExporter) -> None:
    resp = await client.get("/no/such/thing/with-an-id-1234")
    assert resp.status == 404
    span = server_span(exporter, "GET")
    assert span.attributes is not None and "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404


@pytest.fixture
async def own_store(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    store = EmbeddedValkey(tmp_path / "doomed", port=free_port(), appendonly=False)
    store.start()
    yield store
    store.stop()


async def test_store_outage_is_a_503_server_error_with_the_failing_store_span(
        aiohttp_client: Any, redis: Redis, settings: Settings, clock: FakeClock, tracer_provider: TracerProvider,
        exporter: InMemorySpanExporter, own_store: EmbeddedValkey) -> None:
    client = await traced_client(aiohttp_client, dataclasses.replace(settings, redis_url=own_store.url),
                                 clock, tracer_provider, exporter)
    app = await oauth_helpers.add_app(client)
    await oauth_helpers.add_user(client)
    tokens = await oauth_helpers.login(client, app)
    own_store.stop()
    exporter.clear()
    status, body, _ = await oauth_helpers.refresh(client, app, tokens["refresh_token"])
    assert status == 503 and body["error"] == "temporarily_unavailable"

    span = server_span(exporter, "POST /oauth2/token")
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["error.type"] == "503"
    assert span.attributes["oauth.error"] == "temporarily_unavailable"
    assert span.status.status_code is StatusCode.ERROR
    failed = [s for s in children_of(exporter, span) if s.status.status_code is StatusCode.ERROR]
    assert failed and all(s.name.startswith("store.") for s in failed)
    assert failed[0].attributes is not None and failed[0].attributes["error.type"] in (
        "ConnectionError", "TimeoutError")
    assert not any(s.events for s in failed)  # the class alone: no exception message, no traceback


async def test_an_incoming_traceparent_is_continued(client: TestClient, exporter: InMemorySpanExporter) -> None:
    svc = await oauth_helpers.add_client(client, "svc")
    exporter.clear()
    headers = {**svc.basic, "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=abc"}
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert resp.status == 200
    assert "traceparent" not in resp.headers  # the answer carries nothing extra
    span = server_span(exporter, "POST /oauth2/token")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.context.trace_state.get("vendor") == "abc"
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in children_of(exporter, span))


# ---- no secret on any span ----

def b64url_pieces(value: str) -> set[str]:
    """The value, its dot-separated segments (a JWT's), and their base64url-decoded text."""
    encoded = {value, *value.split(".")}
    decoded = set()
    for piece in encoded:
        try:
            decoded.add(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            continue
    return {p for p in encoded | decoded if len(p) >= 8}


def everything_said(spans: Iterable[ReadableSpan]) -> str:
    """Every name, attribute, event, link and status text of `spans`, as one string."""
    said = []
    for span in spans:
        said += [span.name, str(span.status.description or "")]
        said += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            said += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
        said += [str(span.context.trace_state)]
    return "\n".join(said)


async def test_no_secret_token_code_password_or_cookie_appears_on_any_span(
        client: TestClient, exporter: InMemorySpanExporter, clock: Any) -> None:
    secrets: list[str] = []
    svc = await oauth_helpers.add_client(client, "svc")
    assert svc.secret
    secrets += [svc.secret, svc.basic["Authorization"].split(" ", 1)[1]]
    status, body, _ = await oauth_helpers.token(client, svc, grant_type="client_credentials")
    assert status == 200
    secrets.append(body["access_token"])
    await oauth_helpers.introspect(client, svc, body["access_token"])

    web = await sso_helpers.add_app(client, "web", public=False)
    assert web.secret
    secrets.append(web.secret)
    await sso_helpers.add_user(client)
    secrets.append(sso_helpers.PASSWORD)
    flow, answer = await sso_helpers.sign_in(client, web)
    secrets += [answer["code"], flow.verifier, flow.state, flow.nonce]
    secrets += [c.value for c in client.session.cookie_jar]  # the SSO session, the CSRF cookie
    status, tokens = await sso_helpers.redeem(client, flow, answer["code"])
    assert status == 200, tokens
    secrets += [tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": tokens["refresh_token"]},
                             headers=web.auth())
    assert resp.status == 200
    refreshed = await resp.json()
    secrets += [refreshed["access_token"], refreshed["refresh_token"]]
    resp = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert resp.status == 200
    await oauth_helpers.revoke(client, svc, body["access_token"])
    clock.advance(provider_of(client).settings.refresh_reuse_grace + 1)  # past the retry window
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token",  # reuse: refused
                                                    "refresh_token": tokens["refresh_token"]},
                             headers=web.auth())
    assert resp.status == 400

    spans = exporter.get_finished_spans()
    assert len({s.name for s in spans if s.kind is SpanKind.SERVER}) >= 6
    said = everything_said(spans)
    assert "oauth.client_id=web" in said and "oauth.grant_type=refresh_token" in said  # it does say things
    for secret in secrets:
        for piece in b64url_pieces(secret):
            assert piece not in said, f"a piece of a secret is on a span: {piece[:6]}…"
    # and nothing a client or user sent in a header or form lands there by another name
    assert "Authorization" not in said and "Basic " not in said and "Bearer " not in said
    json.dumps([dict(s.attributes or {}) for s in spans])  # plain values only


# ---- off: nothing installed ----

async def test_an_app_built_without_a_tracer_provider_has_no_tracing_installed(
        aiohttp_client: Any, redis: Redis, settings: Settings, clock: FakeClock) -> None:
    app = create_app(settings, clock=clock, run_schedule=False)
    assert list(app.middlewares) == [observe_middleware, error_middleware, body_middleware]
    client: TestClient = await aiohttp_client(app)
    assert TRACER not in client.app
    p = provider_of(client)
    assert isinstance(p.store, CachingStore)  # the store itself: no proxy in front of it
    assert "check" not in vars(p.passwords)
    assert p.signature is jws_signature
    assert p.annotate("oauth.client_id", "x") is None


async def test_a_traced_app_wraps_only_its_own_store(
        aiohttp_client: Any, redis: Redis, settings: Settings, clock: FakeClock,
        tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    traced = await traced_client(aiohttp_client, settings, clock, tracer_provider, exporter)
    plain: TestClient = await aiohttp_client(create_app(settings, clock=clock, run_schedule=False))
    assert isinstance(provider_of(traced).store, TracedStore)
    assert isinstance(provider_of(plain).store, CachingStore)
    assert await provider_of(plain).store.ping()
    assert not exporter.get_finished_spans()  # the untraced app's store made no span


async def test_a_traced_app_is_not_ready_while_its_client_cache_does_not_follow_changes(
        client: TestClient) -> None:
    """/readyz asks the store behind the tracing proxy for its client cache, as an untraced app's does."""
    traced = provider_of(client).store
    assert isinstance(traced, TracedStore) and isinstance(traced.store, CachingStore)
    await traced.store.stop_following()  # as while the subscription is lost or not yet confirmed
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["reasons"] == ["not following client changes"]


# ---- the store proxy: one span per operation the protocol code calls ----

def domains_of(store: Store) -> dict[str, object]:
    """The store's domain objects, by the attributes the Store Protocol names."""
    named = [n for n, member in vars(Store).items() if isinstance(member, property) and n != "client_cache"]
    return {name: getattr(store, name) for name in named}


async def test_every_public_coroutine_of_every_domain_is_traced_and_nothing_else(
        redis: Redis, tracer_provider: TracerProvider) -> None:
    store = RedisStore(redis)
    traced = TracedStore(store, tracer_provider.get_tracer("test"))
    domains = domains_of(store)
    assert len(domains) == 15  # store.managed and store.claim_rules the fourteenth and fifteenth
    for domain, target in domains.items():
        proxy = getattr(traced, domain)
        operations = [n for n, _ in inspect.getmembers(type(target), inspect.iscoroutinefunction)
                      if not n.startswith("_")]
        assert operations or domain == "locks", domain
        for name in operations:
            assert getattr(proxy, name).__wrapped__ == getattr(target, name), f"{domain}.{name}"
            assert getattr(proxy, name) is getattr(proxy, name)  # wrapped once, then kept
    assert traced.locks.lock.__func__ is type(store.locks).lock  # a context manager: no span of its own
    assert traced.users.redis is store.users.redis  # anything else answers as the domain does


async def test_a_store_call_is_one_client_span_named_after_the_operation(
        redis: Redis, tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    traced = TracedStore(RedisStore(redis), tracer_provider.get_tracer("test"))
    await traced.users.add_user(User("sub-1", "alice", "hash"))
    assert await traced.users.find_user("alice") is not None  # its inner get_user is not a second span
    await traced.limits.count_attempt(["login:user:alice"], 60)
    assert await traced.denylist.denied("j", "s", "sub-1") == (False, False, 0)
    async with traced.locks.lock("keys", 5) as mine:
        assert mine
    assert await traced.ping()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["store.add_user", "store.find_user", "store.count_attempt",
                                       "store.denied", "store.ping"]
    for span in spans:
        assert span.kind is SpanKind.CLIENT and span.attributes is not None
        assert dict(span.attributes) == {"db.system.name": "redis",
                                         "db.operation.name": span.name.removeprefix("store.")}


# ---- outbound: a private_key_jwt client's jwks_uri ----

async def test_the_jwks_uri_fetch_is_a_client_span_carrying_traceparent(
        client: TestClient, exporter: InMemorySpanExporter, aiohttp_server: Any, settings: Settings) -> None:
    key = assertion_helpers.new_key(kid="k1")
    seen: list[str | None] = []

    async def jwks(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent"))
        return web.json_response(assertion_helpers.public_jwks(key))

    served = web.Application()
    served.router.add_get("/jwks.json", jwks)
    server = await aiohttp_server(served)
    uri = str(server.make_url("/jwks.json"))
    await admin.add_client(provider_of(client), "svc", ClientMetadata(
        grant_types=("client_credentials",), token_endpoint_auth_method="private_key_jwt", jwks_uri=uri))
    exporter.clear()
    assertion = assertion_helpers.sign(key, assertion_helpers.claims_for(
        "svc", settings.issuer + "/oauth2/token", provider_of(client).now()))
    status, body, _ = await oauth_helpers.post(client, "/oauth2/token", assertion_helpers.assertion_form(
        assertion, grant_type="client_credentials"))
    assert status == 200, body

    span = server_span(exporter, "POST /oauth2/token")
    [fetch] = [s for s in children_of(exporter, span) if s.kind is SpanKind.CLIENT and s.name == "GET"]
    assert fetch.attributes is not None and fetch.attributes["url.full"] == uri
    assert fetch.attributes["http.response.status_code"] == 200
    [traceparent] = seen
    version, trace_id, parent_id, flags = traceparent.split("-") if traceparent else ("",) * 4
    assert (version, trace_id, parent_id) == ("00", format(span.context.trace_id, "032x"),
                                              format(fetch.context.span_id, "016x"))
    assert int(flags, 16) & 1  # sampled
    said = everything_said(exporter.get_finished_spans())
    assert all(piece not in said for piece in b64url_pieces(assertion))
