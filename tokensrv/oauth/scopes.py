"""Scopes (RFC 6749 §3.3): what a client asks for must be within what it is allowed."""
from __future__ import annotations

from collections.abc import Iterable

from tokensrv.claims import is_scope_token
from tokensrv.errors import InvalidScope

__all__ = ["grant_scope", "is_scope_token", "parse_scope"]


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
