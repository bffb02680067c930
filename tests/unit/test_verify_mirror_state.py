"""The revocation mirror's local state and its resync decision, without a store."""
from __future__ import annotations

from typing import Any

import pytest

from tokensrv.verify.mirror import RevocationState, needs_resync, parse_entry

NOW = 1_900_000_000


def test_jti_and_sid_are_revoked_until_their_until() -> None:
    state = RevocationState()
    state.add("jti", "j1", NOW + 100)
    state.add("sid", "s1", NOW + 100)
    assert state.revoked("j1", None, "u", NOW - 5, NOW) == "jti"
    assert state.revoked("j2", "s1", "u", NOW - 5, NOW) == "sid"
    assert state.revoked("j2", "s2", "u", NOW - 5, NOW) is None
    assert state.revoked("j2", "", "u", NOW - 5, NOW) is None
    assert state.revoked("j1", "s1", "u", NOW - 5, NOW + 100) is None  # expired entries no longer count


def test_subject_not_before_revokes_tokens_issued_up_to_that_second() -> None:
    state = RevocationState()
    state.add("sub", "u", NOW + 900, at=NOW)
    assert state.revoked("j", None, "u", NOW, NOW + 1) == "sub"
    assert state.revoked("j", None, "u", NOW - 300, NOW + 1) == "sub"
    assert state.revoked("j", None, "u", NOW + 1, NOW + 1) is None
    assert state.revoked("j", None, "other", NOW, NOW + 1) is None


def test_a_later_subject_revocation_wins_and_an_older_one_never_lowers_it() -> None:
    state = RevocationState()
    state.add("sub", "u", NOW + 900, at=NOW)
    state.add("sub", "u", NOW + 500, at=NOW - 400)  # replayed older entry
    assert state.sub["u"] == (NOW, NOW + 900)
    state.add("sub", "u", NOW + 1000, at=NOW + 100)
    assert state.sub["u"] == (NOW + 100, NOW + 1000)


def test_grace_keeps_entries_for_the_leeway() -> None:
    state = RevocationState(grace=30)
    state.add("jti", "j1", NOW)  # the token's exp: the verifier still accepts it for 30 s
    assert state.revoked("j1", None, "u", NOW - 900, NOW + 20) == "jti"


def test_kids_and_unknown_kinds() -> None:
    state = RevocationState()
    assert state.add("kid", "k1", NOW + 60)
    assert not state.add("family", "f1", NOW + 60)
    assert not state.add("something-new", "x", NOW + 60)
    assert state.kid_revoked("k1", NOW) and not state.kid_revoked("k2", NOW)


def test_purge_drops_expired_entries_only() -> None:
    state = RevocationState()
    for kind in ("jti", "sid", "kid"):
        state.add(kind, "old", NOW - 1)
        state.add(kind, "new", NOW + 60)
    state.add("sub", "old", NOW - 1, at=NOW - 900)
    state.add("sub", "new", NOW + 60, at=NOW)
    assert len(state) == 8
    state.purge(NOW)
    assert len(state) == 4 and state.jti == {"new": NOW + 60} and list(state.sub) == ["new"]


def test_feed_entries_are_parsed_strictly() -> None:
    entry = parse_entry("5-1", {"k": "sub", "v": "u", "u": "100", "t": "40"})
    assert entry is not None and (entry.kind, entry.value, entry.until, entry.at) == ("sub", "u", 100, 40)
    assert parse_entry("5-2", {"k": "jti", "v": "j"}) is None
    assert parse_entry("5-3", {"k": "jti", "v": "j", "u": "soon"}) is None


def info(first: str | None, last: str) -> dict[str, Any]:
    return {"first-entry": (first, {}) if first else None, "last-generated-id": last}


@pytest.mark.parametrize("stream, last_id, resync", [
    (info("10-0", "20-0"), "15-0", False),  # our entry is still there: resume
    (info("10-0", "20-0"), "10-0", False),
    (info("10-0", "20-0"), "20-0", False),
    (info("16-0", "20-0"), "15-0", True),  # trimmed past us
    (info(None, "20-0"), "20-0", False),  # everything trimmed, nothing new
    (info(None, "21-0"), "20-0", True),  # entries came and went while we were away
    (info("1-0", "5-0"), "20-0", True),  # a different stream: the store was replaced
    (None, "20-0", True),  # the stream is gone
    (None, "0-0", False),  # there never was one
])
def test_resync_when_entries_after_ours_may_be_lost(stream: dict[str, Any] | None, last_id: str,
                                                      resync: bool) -> None:
    assert needs_resync(stream, last_id) is resync
