"""One entry of the revocation feed (the store's stream that the mirror follows), kept apart from
the mirror so that a service without redis-py can still name it (`from tokensrv.verify import *`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedEntry:
    id: str
    kind: str
    value: str
    until: int
    at: int


def parse_entry(entry_id: str, fields: dict[str, str]) -> FeedEntry | None:
    try:
        return FeedEntry(entry_id, fields["k"], fields["v"], int(fields["u"]), int(fields.get("t", 0)))
    except (KeyError, ValueError):
        return None


def stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)
