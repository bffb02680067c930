"""`tokensrv serve` with OTEL_TRACES_EXPORTER=console: real processes (one, and two workers,
each with its own TracerProvider after the fork) write their spans as JSON lines on stdout, and
SIGTERM flushes them: the batch delay is set far beyond the test, so every span read here was
sent by the shutdown. Without OTEL_* variables, a server writes no span."""
from __future__ import annotations

import base64
import http.server
import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.live import LiveServer
from tests.helpers.ports import free_port

TRACE_ID = "5b8aa5a2d2c872e8321cf37308d69df2"
PARENT_ID = "051581bf3cb55c13"


def token_request(server: LiveServer, client_id: str, secret: str, headers: dict[str, str]) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(server.url + "/oauth2/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": f"Basic {basic}", **headers})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.status)


def spans_in(log: str) -> list[dict[str, Any]]:
    """The console exporter's lines (one JSON span each) among the server's JSON log lines."""
    spans = []
    for line in log.splitlines():
        if line.startswith("{") and '"context"' in line:
            entry = json.loads(line)
            if "span_id" in entry.get("context", {}):
                spans.append(entry)
    return spans


@pytest.mark.parametrize("workers", ["1", "2"])
def test_spans_are_written_and_flushed_at_sigterm(start_server: Callable[..., LiveServer], workers: str) -> None:
    server = start_server(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="tokensrv-e2e",
                          OTEL_BSP_SCHEDULE_DELAY="600000", TOKENSRV_WORKERS=workers,
                          TOKENSRV_LOG_FORMAT="json")
    created = json.loads(server.cli("client", "add", "--id", "svc", "--grant-type",
                                    "client_credentials").stdout)
    secret = created["client_secret"]
    for _ in range(4):  # with two workers, likely both answer one
        assert token_request(server, "svc", secret, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}) == 200
    assert spans_in(server.log()) == []  # queued, not sent yet
    server.stop()
    assert server.process.returncode == 0

    log = server.log()
    spans = spans_in(log)
    tokens = [s for s in spans if s["name"] == "POST /oauth2/token"]
    assert len(tokens) == 4
    for span in tokens:
        assert span["kind"] == "SpanKind.SERVER"
        assert span["context"]["trace_id"] == "0x" + TRACE_ID and span["parent_id"] == "0x" + PARENT_ID
        assert span["attributes"]["oauth.client_id"] == "svc"
        assert span["attributes"]["oauth.grant_type"] == "client_credentials"
        assert span["resource"]["attributes"]["service.name"] == "tokensrv-e2e"
    signed = [s for s in spans if s["name"] == "jws.sign"]
    assert {s["parent_id"] for s in signed} == {t["context"]["span_id"] for t in tokens}
    assert secret not in log


def test_without_otel_variables_no_span_is_written(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(TOKENSRV_LOG_FORMAT="json", OTEL_TRACES_EXPORTER="", OTEL_EXPORTER_OTLP_ENDPOINT="",
                          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="")
    created = json.loads(server.cli("client", "add", "--id", "svc", "--grant-type",
                                    "client_credentials").stdout)
    assert token_request(server, "svc", created["client_secret"], {}) == 200
    server.stop()
    assert spans_in(server.log()) == []


def test_otlp_without_a_reachable_collector_still_serves_and_stops(start_server: Callable[..., LiveServer]) -> None:
    """An OTLP endpoint nobody listens on: export fails in the background, requests do not."""
    server = start_server(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                          OTEL_EXPORTER_OTLP_TIMEOUT="1", TOKENSRV_LOG_FORMAT="json")
    created = json.loads(server.cli("client", "add", "--id", "svc", "--grant-type",
                                    "client_credentials").stdout)
    assert token_request(server, "svc", created["client_secret"], {}) == 200
    server.stop()
    assert server.process.returncode == 0
    assert created["client_secret"] not in server.log()


class OTLPReceiver:
    """A tiny OTLP/HTTP trace receiver on loopback: decodes each export (protobuf) into spans."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )
        self.spans: list[tuple[str, Any]] = []  # (service.name, the protobuf Span)
        self.paths: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.record(self.path, ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, path: str, request: Any) -> None:
        self.paths.append(path)
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(service, span) for span in scope_spans.spans]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_spans_reach_an_otlp_http_receiver(start_server: Callable[..., LiveServer]) -> None:
    receiver = OTLPReceiver()
    try:
        server = start_server(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, TOKENSRV_LOG_FORMAT="json")
        created = json.loads(server.cli("client", "add", "--id", "svc", "--grant-type",
                                        "client_credentials").stdout)
        assert token_request(server, "svc", created["client_secret"],
                             {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}) == 200
        server.stop()  # flushes: whatever the batch had not sent yet goes now
    finally:
        receiver.stop()
    assert set(receiver.paths) == {"/v1/traces"}
    [(service, span)] = [(svc, s) for svc, s in receiver.spans if s.name == "POST /oauth2/token"]
    assert service == "tokensrv"
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT_ID
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["oauth.client_id"].string_value == "svc"
    assert attributes["http.response.status_code"].int_value == 200
    children = {s.name for _, s in receiver.spans if s.parent_span_id == span.span_id}
    assert {"store.get_client", "jws.sign"} <= children
