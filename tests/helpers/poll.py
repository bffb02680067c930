"""The one way a test waits: poll a condition until it holds, under a bounded deadline.

A test never sleeps for a fixed time to let something happen; it names what it waits for, polls it,
and fails at the deadline saying what never came. A condition may itself assert (a state that must
not occur while waiting): its AssertionError ends the wait at once.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

TIMEOUT = 10.0  # seconds: every wait is bounded; a slower one says so at its call
INTERVAL = 0.05  # seconds between two polls: frequent enough, and light on two shared cores

# What was awaited: a phrase, or a function giving it at the deadline (to name the state reached).
What = str | Callable[[], str]


def _timed_out(what: What, timeout: float) -> AssertionError:
    described = what if isinstance(what, str) else what()
    return AssertionError(f"not within {timeout:g} s: {described}")


@overload
async def eventually(condition: Callable[[], Awaitable[T]], what: What, *, timeout: float = TIMEOUT,
                     interval: float = INTERVAL) -> T: ...
@overload
async def eventually(condition: Callable[[], T], what: What, *, timeout: float = TIMEOUT,
                     interval: float = INTERVAL) -> T: ...
async def eventually(condition: Callable[[], Any], what: What, *, timeout: float = TIMEOUT,
                     interval: float = INTERVAL) -> Any:
    """Poll `condition` (a function, sync or async) until it returns a true value, and return that value.

    Fails with an AssertionError naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout)
        await asyncio.sleep(interval)


def eventually_sync(condition: Callable[[], T], what: What, *, timeout: float = TIMEOUT,
                    interval: float = INTERVAL) -> T:
    """`eventually` for a test without an event loop (real processes polled over HTTP or their logs)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout)
        time.sleep(interval)
    return result
