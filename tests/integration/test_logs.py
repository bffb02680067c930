"""The request log line and the X-Request-ID header, in process."""
from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers.oauth import add_client, token
from tokensrv.observability.logs import JsonFormatter, LineHandler, TextFormatter, audit, setup_logging


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


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.StringIO, list[str]]]:
    """tokensrv's lines to a JSON LineHandler as `serve` sets it up (there on the root logger; here
    on "tokensrv", which does not propagate to pytest's handlers on the root), and the loggers
    whose Logger.handle ran: (what was written, those loggers). pytest also adds its handlers to
    a logger that does not propagate when the test starts: the test takes them off first
    (alone())."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    for name in ("_srcfile", "logThreads", "logMultiprocessing"):  # setup_logging turns them off
        monkeypatch.setattr(logging, name, getattr(logging, name))
    through_logging: list[str] = []
    handle = logging.Logger.handle

    def watched(self: logging.Logger, record: logging.LogRecord) -> None:
        through_logging.append(self.name)
        handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", watched)
    setup_logging("json", logger="tokensrv")
    logger = logging.getLogger("tokensrv")
    try:
        yield stream, through_logging
    finally:
        for handler in logger.handlers:
            handler.flush()
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def alone() -> None:
    logger = logging.getLogger("tokensrv")
    logger.handlers[:] = [h for h in logger.handlers if type(h) is LineHandler]


async def test_a_token_requests_lines_skip_loggings_dispatch(client: TestClient, json_log):
    """The access line and the token.issued event, on every token request, go straight to the
    JSON handler (observability/logs.log_fields): the lines as before, without the cost of
    logging's general path."""
    stream, through_logging = json_log
    alone()
    svc = await add_client(client, "svc")
    status, body, headers = await token(client, svc, grant_type="client_credentials")
    assert status == 200, body
    for handler in logging.getLogger("tokensrv").handlers:
        handler.flush()  # the lines of a loop turn are written at its end
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_id = headers["X-Request-ID"]
    issued = [e for e in entries if e.get("event") == "token.issued"]
    assert len(issued) == 1 and issued[0]["request_id"] == request_id
    assert issued[0]["client_id"] == "svc" and issued[0]["grant_type"] == "client_credentials"
    access = [e for e in entries if e["logger"] == "tokensrv.access"]
    assert [(e["msg"], e["request_id"], e["route"], e["path"], e["status"]) for e in access] == [
        ("POST /oauth2/token 200", request_id, "/oauth2/token", "/oauth2/token", 200)]
    assert list(access[0]) == ["ts", "level", "logger", "msg", "pid", "request_id", "method", "route", "path",
                               "status", "duration_ms", "remote"]
    assert "tokensrv.access" not in through_logging and "tokensrv.audit" not in through_logging
