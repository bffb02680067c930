"""LineHandler: the lines logged in one turn of the event loop leave in one write, none is lost."""
from __future__ import annotations

import asyncio
import logging

from tokensrv.logs import LineHandler


class Stream:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def logger_to(stream: Stream) -> logging.Logger:
    handler = LineHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test-line-handler-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


async def test_lines_of_one_loop_turn_are_written_together_after_it():
    stream = Stream()
    log = logger_to(stream)
    log.info("request")
    log.info("audit")
    assert stream.writes == []  # not yet: the loop has not turned
    await asyncio.sleep(0)  # one turn of the loop (not a wait for time)
    assert stream.writes == ["request\naudit\n"]


async def test_a_warning_is_written_at_once_with_what_waits_before_it():
    stream = Stream()
    log = logger_to(stream)
    log.info("first")
    log.warning("store unreachable")
    assert stream.writes == ["first\nstore unreachable\n"]


def test_outside_a_loop_every_line_is_written_at_once():
    stream = Stream()
    log = logger_to(stream)
    log.info("starting")
    assert stream.writes == ["starting\n"]


async def test_flush_at_shutdown_writes_what_is_pending():
    stream = Stream()
    log = logger_to(stream)
    log.info("last words")
    log.handlers[0].flush()  # what logging.shutdown() does at exit
    assert stream.writes == ["last words\n"]
