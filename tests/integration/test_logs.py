"""The request log line and the X-Request-ID header, in process."""
from __future__ import annotations

import json
import logging

import pytest

from tokensrv.observability.logs import JsonFormatter, TextFormatter, audit


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "tokensrv.access"]


async def test_each_request_logs_one_line_and_echoes_its_id(client, caplog):
    caplog.set_level(logging.DEBUG)  # /healthz answers are logged at debug level
    ok = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
    assert ok.headers["X-Request-ID"] == "lb-7f3a.1"
    bad = await client.post("/oauth2/token?code=SECRETCODE&state=xyz", data={"grant_type": "nope"})
    assert bad.status == 401 and len(bad.headers["X-Request-ID"]) == 16  # ours: none was sent
    missing = await client.get("/nope?id_token_hint=HINT", headers={"X-Request-ID": "x" * 65})
    assert missing.status == 404 and missing.headers["X-Request-ID"] != "x" * 65  # too long: replaced
    weird = await client.get("/healthz", headers={"X-Request-ID": 'a"b c'})
    assert weird.headers["X-Request-ID"] != 'a"b c'

    lines = access_lines(caplog)
    assert [(e["route"], e["status"]) for e in lines] == [
        ("/healthz", 200), ("/oauth2/token", 401), ("unmatched", 404), ("/healthz", 200)]
    assert [e["request_id"] for e in lines] == [
        "lb-7f3a.1", bad.headers["X-Request-ID"], missing.headers["X-Request-ID"], weird.headers["X-Request-ID"]]
    assert lines[2]["path"] == "/nope"
    text = "\n".join(json.dumps(e) for e in lines)
    assert "SECRETCODE" not in text and "HINT" not in text and "state=" not in text


async def test_successful_polls_of_public_documents_and_probes_log_at_debug_only(client, caplog):
    """JWKS, discovery and probes are polled by every verifier and load balancer: counted in the
    metrics, but not a line each at info level. Their failures and every other route still are."""
    caplog.set_level(logging.INFO)
    for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/healthz", "/readyz"):
        assert (await client.get(path)).status == 200
    assert (await client.post("/.well-known/jwks.json")).status == 405
    assert (await client.post("/oauth2/token", data={"grant_type": "nope"})).status == 401
    assert [(e["route"], e["status"]) for e in access_lines(caplog)] == [
        ("unmatched", 405), ("/oauth2/token", 401)]

    caplog.clear()
    caplog.set_level(logging.DEBUG)
    await client.get("/.well-known/jwks.json")
    assert [(e["route"], e["level"]) for e in access_lines(caplog)] == [("/.well-known/jwks.json", "debug")]


def test_text_format_shows_the_fields(caplog):
    caplog.set_level(logging.INFO)
    audit("admin.client_added", client_id="svc")
    record = next(r for r in caplog.records if r.name == "tokensrv.audit")
    line = TextFormatter().format(record)
    assert "tokensrv.audit: admin.client_added" in line and 'client_id="svc"' in line
    assert json.loads(JsonFormatter().format(record))["event"] == "admin.client_added"
