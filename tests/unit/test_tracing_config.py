"""What the OTEL_* variables turn on (tokensrv/server/tracing.py): off unless asked for, the SDK's
kill switch wins, a setup that cannot work is one clear line, and the service's name."""
from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME

from tokensrv.server.tracing import TracingConfig, TracingError, from_environment

OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


@pytest.mark.parametrize("environ", [
    {},
    {"OTEL_SERVICE_NAME": "tokensrv"},  # naming the service alone traces nothing
    {"OTEL_TRACES_EXPORTER": ""},
    {"OTEL_TRACES_EXPORTER": "none"},
    {"OTEL_TRACES_EXPORTER": "console,none"},
    {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "TRUE"},
])
def test_tracing_is_off_unless_asked_for(environ: dict[str, str]) -> None:
    assert from_environment(environ) is None


@pytest.mark.parametrize("environ, exporters", [
    ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
    ({"OTEL_TRACES_EXPORTER": " OTLP , console,otlp"}, ("otlp", "console")),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ("otlp",)),
    ({"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ("console",)),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ("otlp",)),
    ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, ("console",)),
])
def test_what_turns_tracing_on(environ: dict[str, str], exporters: tuple[str, ...]) -> None:
    assert from_environment(environ) == TracingConfig(exporters)


@pytest.mark.parametrize("environ, named", [
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL"),
])
def test_what_cannot_be_done_is_one_line_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TracingError) as raised:
        from_environment(environ)
    message = str(raised.value)
    assert named in message and "\n" not in message


def test_otlp_without_the_exporter_installed_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, OTLP_MODULE, None)  # what an install without the extra has: no module
    with pytest.raises(TracingError) as raised:
        from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert str(raised.value) == ("OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: "
                                 "pip install 'tokensrv[otlp]'")
    assert from_environment({"OTEL_TRACES_EXPORTER": "console"}) == TracingConfig(("console",))


@pytest.mark.parametrize("environ, name", [
    ({}, "tokensrv"),
    ({"OTEL_SERVICE_NAME": "idp-eu"}, "idp-eu"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,deployment.environment=prod"}, "from-attributes"),
    ({"OTEL_SERVICE_NAME": "wins", "OTEL_RESOURCE_ATTRIBUTES": "service.name=loses"}, "wins"),
])
def test_the_service_is_named_tokensrv_unless_the_variables_say_otherwise(
        monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], name: str) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    provider = TracingConfig(("console",)).start()
    try:
        assert provider.resource.attributes[SERVICE_NAME] == name
    finally:
        provider.shutdown()


def test_inject_traceparent_adds_the_current_span_and_nothing_without_one() -> None:
    """The helper for outbound requests made without the app's traced session (e.g. deliveries)."""
    from opentelemetry.sdk.trace import TracerProvider

    from tokensrv.server.tracing import inject_traceparent

    assert inject_traceparent({}) == {}
    provider = TracerProvider()
    try:
        with provider.get_tracer("test").start_as_current_span("outbound") as span:
            headers = inject_traceparent({"Content-Type": "application/x-www-form-urlencoded"})
        context = span.get_span_context()
        trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
        assert headers["traceparent"].startswith(f"00-{trace_id}-{span_id}-")
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    finally:
        provider.shutdown()
