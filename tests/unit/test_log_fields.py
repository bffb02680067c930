"""log_fields hands a record straight to a JSON LineHandler when that handler alone would see it:
the line is the one logging's own path writes, and anything else on the way (a filter, another
handler, the text format, a disabled logger, a level) sends the record through logging itself."""
from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tokensrv.observability.logs import REQUEST_ID_VAR, JsonFormatter, LineHandler, TextFormatter, audit, log_fields

NOW = 1765139960.0427  # 2025-12-07T20:39:20.042Z
FIELDS = {"request_id": "r-1", "method": "POST", "status": 200, "duration_ms": 1.25, "remote": "127.0.0.1",
          "where": Path("/srv"), "none": None}  # a value json cannot encode is written as str()


class Setup:
    def __init__(self, logger: logging.Logger, handler: LineHandler, stream: io.StringIO) -> None:
        self.logger, self.handler, self.stream = logger, handler, stream
        self.through_logging: list[str] = []  # loggers whose Logger.handle ran

    def alone(self) -> None:
        """pytest adds its capture handlers to every logger that does not propagate when a test
        starts (after the fixtures): take them off, as a server has none."""
        self.logger.handlers[:] = [self.handler]

    def written(self) -> str:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return text


@pytest.fixture
def line_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A logger of its own with a JSON LineHandler (outside the loop: it writes at once), the clock
    stopped, and Logger.handle watched."""
    stream = io.StringIO()
    handler = LineHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tokensrv.test_log_fields")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    found = Setup(logger, handler, stream)  # a test calls found.alone() first
    monkeypatch.setattr(time, "time", lambda: NOW)
    handle = logging.Logger.handle

    def watched(self: logging.Logger, record: logging.LogRecord) -> None:
        found.through_logging.append(self.name)
        handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", watched)
    try:
        yield found
    finally:
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def write_one(line_log: Setup) -> str:
    token = REQUEST_ID_VAR.set("rid-7")
    try:
        log_fields(line_log.logger, logging.INFO, "%s %s %d", dict(FIELDS), "POST", "/oauth2/token", 200)
    finally:
        REQUEST_ID_VAR.reset(token)
    return line_log.written()


def test_the_direct_line_is_the_line_logging_writes(line_log: Setup) -> None:
    line_log.alone()
    direct = write_one(line_log)
    assert line_log.through_logging == []
    line_log.handler.addFilter(lambda record: True)  # lets everything through, but logging must run it
    through_logging = write_one(line_log)
    assert line_log.through_logging == [line_log.logger.name]
    assert direct == through_logging
    assert direct.endswith("}\n") and direct.count("\n") == 1
    entry = json.loads(direct)
    assert entry == {"ts": "2025-12-07T20:39:20.042Z", "level": "info", "logger": line_log.logger.name,
                     "msg": "POST /oauth2/token 200", "pid": entry["pid"], "request_id": "r-1", "method": "POST",
                     "status": 200, "duration_ms": 1.25, "remote": "127.0.0.1", "where": "/srv", "none": None}
    assert list(entry)[:5] == ["ts", "level", "logger", "msg", "pid"]  # the order logging's path gives


def test_an_audit_event_is_the_line_logging_writes(line_log: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    line_log.alone()
    monkeypatch.setattr("tokensrv.observability.logs.AUDIT", line_log.logger)
    audit("token.issued", grant_type="client_credentials", client_id="svc", sub="svc", jti="j1", refresh=False)
    direct = line_log.written()
    line_log.logger.addFilter(lambda record: True)
    audit("token.issued", grant_type="client_credentials", client_id="svc", sub="svc", jti="j1", refresh=False)
    assert line_log.through_logging == [line_log.logger.name]
    assert direct == line_log.written()
    assert json.loads(direct)["event"] == "token.issued" and json.loads(direct)["msg"] == "token.issued"


def another_handler(line_log: Setup) -> None:
    line_log.logger.addHandler(logging.NullHandler())


def text_format(line_log: Setup) -> None:
    line_log.handler.setFormatter(TextFormatter())


def logger_filter(line_log: Setup) -> None:
    line_log.logger.addFilter(lambda record: True)


def on_the_parent(line_log: Setup) -> None:
    """The handler one logger up, and another handler there too."""
    parent = logging.getLogger("tokensrv.test_log_fields.parent")
    parent.handlers[:] = [line_log.handler, logging.NullHandler()]
    parent.propagate = False
    line_log.logger = parent.getChild("child")
    line_log.logger.setLevel(logging.DEBUG)


@pytest.mark.parametrize("change", [another_handler, text_format, logger_filter, on_the_parent])
def test_anything_else_that_would_see_the_record_gets_it_from_logging(line_log: Setup,
                                                                      change: Callable[[Setup], None]) -> None:
    line_log.alone()
    change(line_log)
    written = write_one(line_log)
    assert line_log.through_logging == [line_log.logger.name]
    assert "POST /oauth2/token 200" in written


def test_what_logging_would_not_write_is_not_written(line_log: Setup) -> None:
    line_log.alone()
    line_log.handler.setLevel(logging.WARNING)
    assert write_one(line_log) == ""
    line_log.handler.setLevel(logging.NOTSET)
    line_log.logger.disabled = True
    try:
        assert write_one(line_log) == ""
    finally:
        line_log.logger.disabled = False
    line_log.logger.setLevel(logging.WARNING)
    assert write_one(line_log) == ""


def test_a_lone_mapping_argument_is_formatted_as_logging_does(line_log: Setup) -> None:
    line_log.alone()
    log_fields(line_log.logger, logging.INFO, "%(a)s", {}, {"a": "x"})
    assert json.loads(line_log.written())["msg"] == "x"
