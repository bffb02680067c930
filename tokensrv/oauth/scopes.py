"""Scopes (RFC 6749 §3.3): what a client asks for must be within what it is allowed."""
from __future__ import annotations

import re
from collections.abc import Iterable

from tokensrv.errors import InvalidScope

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_scope_token(value: str) -> bool:
    """scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII but space, " and \\."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


def parse_scope(raw: str) -> list[str]:
    """Space-delimited scope tokens, in order, without repeats; anything else is invalid_scope."""
    parts = raw.split(" ")
    if not all(map(is_scope_token, parts)):
        raise InvalidScope("malformed scope", description="scope is malformed")
    return list(dict.fromkeys(parts))


def grant_scope(requested: str | None, allowed: Iterable[str]) -> str:
    """The scope to grant: everything allowed when none is asked for, else exactly what is asked."""
    allowed = list(allowed)
    if requested is None:
        return " ".join(allowed)
    wanted = parse_scope(requested)
    if not set(wanted) <= set(allowed):
        raise InvalidScope(f"requested scope exceeds {' '.join(allowed)!r}")
    return " ".join(wanted)
