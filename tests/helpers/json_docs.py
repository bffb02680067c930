"""Hostile JSON documents: deep nesting and the odd values a strict parser refuses."""
from __future__ import annotations

from hypothesis import strategies as st

from tokensrv.verify.json_limits import MAX_DEPTH

KINDS = ("array", "object", "mixed")


def nested(depth: int, kind: str = "array", wrapped: bool = False) -> bytes:
    """`depth` levels of arrays, objects or both, alone or as one member of a plausible object."""
    if kind == "array":
        doc = b"[" * depth + b"]" * depth
    elif kind == "object":
        doc = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        pairs = (depth + 1) // 2
        doc = b'{"a":[' * pairs + b"1" + b"]}" * pairs
    return b'{"iss": "x", "claims": ' + doc + b"}" if wrapped else doc


# Documents no caller may take for a JSON object, each for its own reason.
ODD: dict[str, bytes] = {
    "NaN": b'{"exp": NaN}',
    "Infinity": b'{"exp": Infinity}',
    "-Infinity": b'{"exp": -Infinity}',
    "a number beyond a double": b'{"exp": 1e999}',
    "a 5000-digit number": b'{"exp": ' + b"9" * 5000 + b"}",
    "a repeated name": b'{"sub": "a", "sub": "b"}',
    "a repeated name, nested": b'{"cnf": {"jkt": "a", "jkt": "b"}}',
    "latin-1": b'{"sub": "caf\xe9"}',
    "UTF-16": '{"sub": "a"}'.encode("utf-16"),
    "a byte order mark": b'\xef\xbb\xbf{"sub": "a"}',
    "a lone surrogate": b'{"sub": "\\ud800"}',
    "a lone low surrogate in a name": b'{"\\uDFFF": 1}',
    "a reversed surrogate pair": b'{"sub": "\\ude00\\ud83d"}',
    "a control character": b'{"sub": "a\x00b"}',
    "an array": b"[]",
    "a number": b"1",
    "null": b"null",
    "a string": b'"x"',
    "true": b"true",
    "trailing text": b'{"sub": "a"} x',
    "nothing": b"",
    "truncated": b'{"sub": ',
    "brackets that do not pair": b'{"a": [}',
}


# just past the limit; about where json.loads hit Python's recursion limit; far beyond
depths = st.integers(MAX_DEPTH + 1, 100) | st.integers(1000, 1500) | st.integers(1500, 3000)


deep = st.builds(nested, depths, st.sampled_from(KINDS), st.booleans())


hostile = deep | st.sampled_from(sorted(ODD)).map(ODD.__getitem__)
