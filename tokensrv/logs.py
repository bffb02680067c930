"""Logging: one JSON object per line (or plain text with TOKENSRV_LOG_FORMAT=text).

Structured fields travel in `extra={"fields": {...}}`. Audit events go to the `tokensrv.audit`
logger with an `event` field; `audit()` is the one way to write them. Nothing logged here may hold
a token, secret, password or private key: callers pass ids (sub, jti, client_id, kid), never values.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

AUDIT = logging.getLogger("tokensrv.audit")
# the request being handled (set by observe.py), so every line it causes can be joined to it
REQUEST_ID_VAR: ContextVar[str | None] = ContextVar("request_id", default=None)


def audit(event: str, **fields: Any) -> None:
    """An audit event: who did what to which id (never a credential)."""
    AUDIT.info(event, extra={"fields": {"event": event, **fields}})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
            "pid": record.process,  # which worker, with --workers N
        }
        request_id = REQUEST_ID_VAR.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: the message, then the structured fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items() if k != "event")
        return line


def setup_logging(log_format: str, level: int = logging.INFO, logger: str = "") -> None:
    """Send `logger` (the root by default) to stderr in `log_format` ("json" or "text")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    target = logging.getLogger(logger)
    target.handlers[:] = [handler]
    target.setLevel(level)
    if logger:
        target.propagate = False
