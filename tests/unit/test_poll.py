"""eventually(): the value the condition reached, or a failure at the deadline naming what never came."""
from __future__ import annotations

import pytest

from tests.helpers.poll import eventually, eventually_sync


async def test_eventually_returns_the_first_true_value_of_a_sync_or_async_condition() -> None:
    calls: list[int] = []

    def third() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) == 3 else None

    async def at_once() -> str:
        return "ready"

    assert await eventually(third, "the third call", interval=0) == 3
    assert await eventually(at_once, "a ready answer") == "ready"


async def test_eventually_fails_at_the_deadline_naming_what_was_awaited() -> None:
    state = {"seen": 0}

    def never() -> bool:
        state["seen"] += 1
        return False

    with pytest.raises(AssertionError, match=r"not within 0\.05 s: the lock to be taken"):
        await eventually(never, "the lock to be taken", timeout=0.05, interval=0.01)
    with pytest.raises(AssertionError, match=r"not within 0\.05 s: polled \d+ times"):
        await eventually(never, lambda: f"polled {state['seen']} times", timeout=0.05, interval=0.01)


async def test_an_assertion_of_the_condition_ends_the_wait_at_once() -> None:
    def broken() -> bool:
        raise AssertionError("the task ended first")

    with pytest.raises(AssertionError, match="the task ended first"):
        await eventually(broken, "never reached", timeout=60)


def test_eventually_sync_returns_the_value_or_fails_naming_what() -> None:
    values = iter([0, "", "kid-2"])
    assert eventually_sync(lambda: next(values), "a new kid", interval=0) == "kid-2"
    with pytest.raises(AssertionError, match=r"not within 0\.05 s: the port to refuse"):
        eventually_sync(lambda: False, "the port to refuse", timeout=0.05, interval=0.01)
