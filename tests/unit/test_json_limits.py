"""tokensrv.verify.json_limits, the one parser of JSON from outside: what it accepts round-trips,
what nests too deep or is too big is refused before json.loads recurses, odd documents are
refused with JSONRejected, and nothing else ever escapes it."""
from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from unittest import mock

import pytest
from aiohttp import StreamReader
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.json_docs import KINDS, ODD, hostile, nested
from tokensrv.verify.json_limits import MAX_DEPTH, JSONRejected, parse, parse_object, too_deep

LIMIT = 1 << 20


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_what_is_within_bounds_round_trips(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert depth_of(value) <= MAX_DEPTH
    assert parse(raw, max_bytes=LIMIT) == value


@settings(max_examples=200, deadline=None)
@given(doc=hostile)
def test_hostile_documents_are_refused_as_objects(doc: bytes) -> None:
    with pytest.raises(JSONRejected):
        parse_object(doc, max_bytes=LIMIT)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(alphabet='[]{}"\\:,a1 ', max_size=200).map(str.encode))
def test_any_bytes_give_a_value_or_json_rejected(raw: bytes) -> None:
    with contextlib.suppress(JSONRejected):
        parse(raw, max_bytes=LIMIT)


@pytest.mark.parametrize("kind", KINDS)
def test_the_depth_limit_is_exact(kind: str) -> None:
    at_limit = nested(MAX_DEPTH, kind)
    assert parse(at_limit, max_bytes=LIMIT) is not None
    with pytest.raises(JSONRejected, match="deeper than"):
        parse(nested(MAX_DEPTH + 2, kind), max_bytes=LIMIT)
    assert parse(b"[" * 3 + b"]" * 3, max_bytes=LIMIT, max_depth=3) == [[[]]]
    with pytest.raises(JSONRejected, match="deeper than"):
        parse(b"[" * 4 + b"]" * 4, max_bytes=LIMIT, max_depth=3)


def test_depth_is_measured_without_json_loads_or_recursion() -> None:
    """100,000 levels (1 MB here, far below Python's stack) are refused by the scan: json.loads
    would raise RecursionError, and is never called."""
    with mock.patch("json.JSONDecoder.decode", side_effect=AssertionError("json.loads ran")):
        for kind in KINDS:
            with pytest.raises(JSONRejected, match="deeper than"):
                parse(nested(100_000, kind), max_bytes=4 * LIMIT)


def test_brackets_inside_strings_are_not_nesting() -> None:
    inside = '{"a": "' + "[" * 1000 + '", "b": "\\"' + "{" * 1000 + '\\\\", "c": ["]]]"]}'
    assert parse(inside.encode(), max_bytes=LIMIT) == json.loads(inside)
    assert not too_deep(inside.encode(), MAX_DEPTH)
    # an escaped quote does not end a string: the brackets after it are still inside
    assert not too_deep(b'["\\"' + b"[" * 100 + b'"]', 2)


def test_size_is_checked_first() -> None:
    with pytest.raises(JSONRejected, match="over 10 bytes"):
        parse(b'{"a": "bcdefg"}', max_bytes=10)
    assert parse(b'{"a": "bcd"}', max_bytes=12) == {"a": "bcd"}


@pytest.mark.parametrize("name", sorted(ODD))
def test_each_odd_document_is_refused(name: str) -> None:
    with pytest.raises(JSONRejected):
        parse_object(ODD[name], max_bytes=LIMIT)


def test_paired_surrogates_and_escaped_backslashes_are_fine() -> None:
    assert parse(b'{"e": "\\ud83d\\ude00"}', max_bytes=LIMIT) == {"e": "\U0001F600"}
    assert parse(b'{"e": "\\\\ud800"}', max_bytes=LIMIT) == {"e": "\\ud800"}  # a backslash, then text


async def test_read_at_most_reads_a_body_that_arrives_in_parts() -> None:
    """StreamReader.read(n) gives what has arrived: a JWKS in two TCP segments was cut in half."""
    from tokensrv.verify.jwks import read_at_most  # here: the test that it exists and reads all
    stream = StreamReader(mock.Mock(_reading_paused=False), 2 ** 16, loop=asyncio.get_running_loop())
    stream.feed_data(b'{"keys": ')
    reading = asyncio.ensure_future(read_at_most(stream, 100))
    await asyncio.sleep(0)  # a yield, not a wait: lets the read consume the first part
    stream.feed_data(b"[]}")
    stream.feed_eof()
    assert await reading == b'{"keys": []}'

    stream = StreamReader(mock.Mock(_reading_paused=False), 2 ** 16, loop=asyncio.get_running_loop())
    stream.feed_data(b"x" * 60)
    stream.feed_data(b"y" * 60)
    stream.feed_eof()
    assert await read_at_most(stream, 100) == b"x" * 60 + b"y" * 41  # the cap, plus one to tell


@pytest.mark.parametrize("raw, value", [(b' {"a": 1} ', {"a": 1}), (b'{"a": 1}\n', {"a": 1}), (b"\n[1]\t", [1]),
                                        (b'"x"', "x"), (b"0", 0)])
def test_whitespace_around_a_value_is_json(raw: bytes, value: Any) -> None:
    assert parse(raw, max_bytes=LIMIT) == value


@pytest.mark.parametrize("raw", [b"  ", b"1 2", b'{"a": 1} {}', b"[1]]"])
def test_anything_but_one_value_is_not_json(raw: bytes) -> None:
    with pytest.raises(JSONRejected, match="not JSON"):
        parse(raw, max_bytes=LIMIT)


def test_escapes_are_read_as_json_reads_them() -> None:
    # an escaped backslash ends with the quote after it: the brackets that follow are nesting
    assert too_deep(b'["\\\\", ' + b"[" * 40 + b"]" * 40 + b"]", MAX_DEPTH)
    # an escaped backslash, then an escaped quote: the string goes on, the brackets are in it
    assert not too_deep(b'["\\\\\\"' + b"[" * 40 + b'"]', 2)
    assert parse(b'["\\\\\\"' + b"[" * 40 + b'"]', max_bytes=LIMIT) == ['\\"' + "[" * 40]


@pytest.mark.parametrize("tail", [b'\\"', b"\\", b'"', b"\\\\"])
def test_the_depth_scan_stays_linear_on_unterminated_strings(tail: bytes) -> None:
    """A string-matching regex backtracked from every escaped quote of an unterminated string:
    32 KB took seconds, this megabyte would have taken over an hour (the test timeout catches it)."""
    hostile_doc = b"[" * 40 + b'"' + tail * (1_000_000 // len(tail))
    with pytest.raises(JSONRejected):
        parse(hostile_doc, max_bytes=4 * LIMIT)
