"""The one JSON parser for documents from outside: JWT headers and payloads, DPoP proofs, client
assertions, registration bodies, fetched JWKS and discovery documents.

`json.loads` alone has no size limit and recurses once per nesting level: a 2 KB payload of 1000
nested arrays raises RecursionError (a 500 wherever nobody expected it), and anything that walks
a deep value later (json.dumps, repr, a log line) can hit the same wall. So the size is checked
first, then the nesting depth by a scan in C (no recursion, a bounded number of passes), and only
then does json.loads run, on a document known to be shallow.

Also refused, because each would mislead a caller that checks types and values: bytes that are
not UTF-8 (RFC 8259 §8.1), NaN and Infinity (not JSON; they defeat time comparisons), numbers too
large for a double (1e999 parses as infinity), a member name given twice (RFC 7515 §5.2, RFC 8259
§4: reject rather than guess which one counts) and unpaired surrogate escapes such as "\\ud800"
(RFC 7493 §2.1: such a string cannot be written out as UTF-8 again).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32  # nesting levels: a JWT or a JWKS needs about 4, registration metadata about 5

# Strings are cut out in two linear steps: every escape (a backslash and the character after it)
# first, then every quote-to-quote run, which then holds no backslash. (One regex matching a
# string with its escapes backtracks from each escaped quote of an unterminated string: quadratic.)
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = bytes.maketrans(b"{}", b"[]")  # one kind: depth is all the scan measures
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \uD800-\uDFFF, either case of hex digit


class JSONRejected(ValueError):
    """Not a JSON document we parse. The message is fixed text naming the reason, safe to log."""


def _reject_constant(name: str) -> Any:
    raise JSONRejected(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRejected("a number is too large")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise JSONRejected("a member name is repeated")
    return result


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite,
                            object_pairs_hook=_unique_members)
# the decoder's C scanner (typeshed does not list the attribute JSONDecoder.__init__ sets)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def too_deep(raw: bytes, max_depth: int) -> bool:
    """Whether arrays and objects nest more than `max_depth` deep outside strings (or, for text
    that is not JSON anyway, whether the brackets fail to pair up within that many levels)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # nearly every document: too few brackets to nest that deep, nothing to scan
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", raw)).translate(_BRACKETS, _NOT_BRACKETS)
    # each pass removes every innermost pair, one nesting level: what is left after max_depth
    # passes was deeper (or never paired)
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def parse(raw: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON document of at most `max_bytes` bytes of UTF-8 and `max_depth` levels
    of nesting; JSONRejected otherwise."""
    if len(raw) > max_bytes:
        raise JSONRejected(f"the document is over {max_bytes} bytes")
    # too_deep's first test inline: this runs for every token a verifier checks
    if raw.count(b"[") + raw.count(b"{") > max_depth and too_deep(raw, max_depth):
        raise JSONRejected(f"the document nests deeper than {max_depth} levels")
    try:
        text = raw.decode("utf-8")
        # the C scanner itself, without JSONDecoder.decode's Python around it; anything but a
        # document that is one value from its first character to its last takes the full path
        value, end = _SCAN(text, 0)
        if end != len(text):
            value = _DECODER.decode(text)
    except StopIteration:  # no value at the start: whitespace first (the full path), or nothing
        value = _decode(text)
    except JSONRejected:
        raise
    except (ValueError, RecursionError):  # RecursionError: cannot happen below max_depth; cheap to be sure
        raise JSONRejected("the document is not JSON") from None
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None and not _encodable(value):
        raise JSONRejected("a string holds an unpaired surrogate")
    return value


def _decode(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except JSONRejected:
        raise
    except (ValueError, RecursionError):
        raise JSONRejected("the document is not JSON") from None


def parse_object(raw: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """As `parse`, for a document that must be a JSON object."""
    value = parse(raw, max_bytes=max_bytes, max_depth=max_depth)
    if type(value) is not dict:
        raise JSONRejected("the document is not a JSON object")
    return value


def _encodable(value: Any) -> bool:
    """Whether every string in `value` (names too) can be written as UTF-8: a paired surrogate
    escape decodes to one character, an unpaired one stays a lone surrogate, which cannot."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
