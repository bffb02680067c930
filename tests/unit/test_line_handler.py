"""LineHandler: the lines logged in one turn of the event loop leave in one write, none is lost."""
from __future__ import annotations

import asyncio
import logging

from tokensrv.observability import logs
from tokensrv.observability.logs import LineHandler


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


def test_lines_of_a_loop_that_stopped_first_are_written_by_the_next_loop():
    """A loop may stop before it runs the flush it was given: nothing may stay stuck."""
    stream = Stream()
    log = logger_to(stream)
    first = asyncio.new_event_loop()
    first.call_soon(log.info, "in the first loop")
    first.call_soon(first.stop)  # the same turn: the flush scheduled for the next one never runs
    first.run_forever()
    first.close()
    assert stream.writes == []

    async def log_and_turn() -> None:
        log.info("in the second loop")
        await asyncio.sleep(0)

    asyncio.run(log_and_turn())
    assert stream.writes == ["in the first loop\nin the second loop\n"]


async def test_pending_lines_are_written_before_a_fork():
    """A forked worker starts with a copy of what is pending: written first, it is written once."""
    stream = Stream()
    log = logger_to(stream)
    log.info("before the fork")
    logs._flush_line_handlers()  # what os.register_at_fork(before=...) runs
    assert stream.writes == ["before the fork\n"]


def test_a_batch_is_written_in_pieces_no_larger_than_an_atomic_pipe_write():
    """Workers share one stderr pipe in a container: a write over PIPE_BUF bytes may interleave
    with another worker's inside a line; pieces of whole lines up to PIPE_BUF never do."""
    lines = [f"{i:04d} " + "x" * 94 + "\n" for i in range(100)]  # 100 bytes each
    written = list(logs.pieces(lines, limit=1000))
    assert "".join(written) == "".join(lines)
    assert [len(p) for p in written] == [1000] * 10
    assert list(logs.pieces(["y" * 1500 + "\n", "z\n"], limit=1000)) == ["y" * 1500 + "\n", "z\n"]
    assert list(logs.pieces(["é" * 400 + "\n", "é" * 400 + "\n"], limit=1000)) == ["é" * 400 + "\n"] * 2


async def test_a_large_batch_reaches_the_stream_in_pipe_sized_writes():
    stream = Stream()
    log = logger_to(stream)
    for i in range(200):
        log.info("line %03d %s", i, "x" * 80)
    await asyncio.sleep(0)
    assert all(len(w.encode()) <= logs.PIPE_BUF for w in stream.writes) and len(stream.writes) > 1
    assert "".join(stream.writes).splitlines() == [f"line {i:03d} " + "x" * 80 for i in range(200)]
