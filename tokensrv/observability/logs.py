"""Logging: one JSON object per line (or plain text with TOKENSRV_LOG_FORMAT=text).

Structured fields travel in `extra={"fields": {...}}`. Audit events go to the `tokensrv.audit`
logger with an `event` field; `audit()` is the one way to write them. Nothing logged here may hold
a token, secret, password or private key: callers pass ids (sub, jti, client_id, kid), never values.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TextIO

AUDIT = logging.getLogger("tokensrv.audit")
PIPE_BUF = getattr(select, "PIPE_BUF", 512)  # 512: the least POSIX allows
# json.dumps(value, default=str), with one encoder for every line instead of a new one per call
_encode = json.JSONEncoder(default=str).encode
# the request being handled (set by server/observe.py), so every line it causes can be joined to it
REQUEST_ID_VAR: ContextVar[str | None] = ContextVar("request_id", default=None)


def audit(event: str, **fields: Any) -> None:
    """An audit event: who did what to which id (never a credential)."""
    log_fields(AUDIT, logging.INFO, event, {"event": event, **fields})


def log_fields(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any], *args: object) -> None:
    """`logger.log(level, msg, *args, extra={"fields": fields})`, the same line written.

    The access line and the audit events are logged on every token request. When the one place
    the record would go is a LineHandler writing JSON (the server's set-up; not under pytest's
    caplog, which adds a handler of its own), the record is made and handed to it directly:
    logging's general path costs about as much again as the line's JSON (the logger hierarchy
    walked twice, the source file's name worked out, `extra` copied into the record). Otherwise,
    and for a lone mapping argument (which LogRecord unwraps), logging's own path.
    """
    if not logger.isEnabledFor(level):
        return
    handler = _sole_json_handler(logger, level)
    if handler is None or (len(args) == 1 and isinstance(args[0], Mapping)):
        logger.log(level, msg, *args, extra={"fields": fields})
    else:
        handler.handle(_FieldsRecord(logger.name, level, msg, args, fields))


def _sole_json_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The handler a record of `logger` at `level` reaches if that is a JSON LineHandler alone and
    nothing else (a filter, a disabled logger, another handler, logging's last resort) would
    see or stop the record on the way, as in logging.Logger.handle and callHandlers; else None."""
    if logger.disabled or logger.filters:
        return None
    found: LineHandler | None = None
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if (found is not None or type(handler) is not LineHandler or handler.filters
                    or type(handler.formatter) is not JsonFormatter or level < handler.level):
                return None
            found = handler
        node = node.parent if node.propagate else None
    return found


class _FieldsRecord(logging.LogRecord):
    """The record logger.log would make, with what JsonFormatter and logging.Handler read: the
    time, level, logger, message, process and fields. For a JSON LineHandler alone (log_fields),
    so LogRecord's own constructor is left out: it also works out the source file's and module's
    names, the time since startup and the thread, which no JSON line shows."""

    def __init__(self, name: str, level: int, msg: str, args: tuple[object, ...], fields: dict[str, Any]) -> None:
        self.created = created = time.time()
        self.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord has it
        self.name, self.msg, self.args, self.fields = name, msg, args, fields
        self.levelno, self.levelname = level, logging.getLevelName(level)
        self.process = _pid  # which worker (os.getpid() is a system call each time)
        self.exc_info, self.exc_text, self.stack_info = None, None, None
        self.pathname = self.filename = self.module = "(unknown file)"
        self.funcName, self.lineno = "(unknown function)", 0


class JsonFormatter(logging.Formatter):
    _second, _stamp = -1, ""  # the last second formatted: many lines share it

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
            "pid": record.process,  # which worker, with --workers N
        }
        request_id = REQUEST_ID_VAR.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)


class TextFormatter(logging.Formatter):
    """For a terminal: the message, then the structured fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{k}={_encode(v)}" for k, v in fields.items() if k != "event")
        return line


class LineHandler(logging.StreamHandler[TextIO]):
    """Writes the lines logged during one turn of the event loop with one write.

    A token request logs two lines (the request and the audit event); a write and flush per line
    cost a system call each on the hottest path. Lines wait at most until the loop has run the
    callbacks that were ready, and warnings, errors and lines logged outside the loop (startup, the
    CLI, other threads) are written at once, with whatever is pending before them. Pending lines
    are also written before the process forks (or a worker would write them a second time) and
    when logging shuts down.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        # the loop that will write the pending lines: a loop that closes first (asyncio.run
        # returning) never does, so the next line logged in another loop schedules again
        self._flush_on: asyncio.AbstractEventLoop | None = None
        _line_handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:  # logging's own convention: report, never raise
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or record.levelno >= logging.WARNING:
            self._write()
        elif self._flush_on is not loop:
            self._flush_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # an RLock: emit() may hold it already
            self._flush_on = None
            self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            for piece in pieces(lines):
                self.stream.write(piece)
                self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nowhere left to say so
            pass


def pieces(lines: list[str], limit: int = PIPE_BUF) -> Iterator[str]:
    """Consecutive lines joined into writes of at most `limit` bytes (a longer line alone). A write
    of up to PIPE_BUF bytes to a pipe is atomic, so workers sharing one stderr pipe (a container's)
    never interleave inside each other's lines."""
    piece: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if piece and size + length > limit:
            yield "".join(piece)
            piece, size = [], 0
        piece.append(line)
        size += length
    if piece:
        yield "".join(piece)


_line_handlers: weakref.WeakSet[LineHandler] = weakref.WeakSet()
_pid = os.getpid()  # this process's, for _FieldsRecord; a forked worker learns its own below


def _forked() -> None:
    global _pid
    _pid = os.getpid()


def _flush_line_handlers() -> None:
    for handler in list(_line_handlers):
        handler.flush()


if hasattr(os, "register_at_fork"):  # POSIX: `serve --workers N` forks its workers
    os.register_at_fork(before=_flush_line_handlers, after_in_child=_forked)


def error_line(message: str, log_format: str) -> str:
    """A failure to start the server, as one line of its log format: a log shipper reading a JSON
    stream gets JSON even from a server that never got going."""
    if log_format != "json":
        return f"tokensrv: error: {message}"
    record = logging.LogRecord("tokensrv", logging.ERROR, "", 0, message, None, None)
    return JsonFormatter().format(record)


def log_uncaught() -> None:
    """Uncaught exceptions (main thread and others) become log records, not raw tracebacks
    interleaved with the log lines."""
    crash = logging.getLogger("tokensrv")

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        crash.critical("uncaught exception", exc_info=(kind, value, tb))

    def thread_excepthook(args: Any) -> None:
        if args.exc_type is not SystemExit:
            crash.critical("uncaught exception in a thread", exc_info=(args.exc_type, args.exc_value,
                                                                       args.exc_traceback))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    logging.captureWarnings(True)  # warnings.warn() lines too


def setup_logging(log_format: str, level: int = logging.INFO, logger: str = "") -> None:
    """Send `logger` (the root by default) to stderr in `log_format` ("json" or "text")."""
    # Neither format shows the caller's file and line, the thread or the process name: logging
    # can skip looking them up for every record (the first walks the stack; see logging's source).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    target = logging.getLogger(logger)
    target.handlers[:] = [handler]
    target.setLevel(level)
    if logger:
        target.propagate = False
