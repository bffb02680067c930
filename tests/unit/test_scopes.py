"""Scopes (RFC 6749 §3.3): syntax, and requested ⊆ allowed."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensrv.errors import InvalidScope
from tokensrv.oauth.scopes import grant_scope, is_scope_token, parse_scope

token_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\')
scope_tokens = st.text(token_chars, min_size=1, max_size=12)


@given(st.lists(scope_tokens, min_size=1, max_size=6))
def test_parse_keeps_order_and_drops_repeats(tokens):
    assert parse_scope(" ".join(tokens)) == list(dict.fromkeys(tokens))


@given(st.lists(scope_tokens, min_size=1, max_size=6, unique=True), st.data())
def test_any_subset_of_allowed_is_granted_as_asked(allowed, data):
    wanted = data.draw(st.lists(st.sampled_from(allowed), min_size=1, unique=True))
    assert grant_scope(" ".join(wanted), allowed) == " ".join(wanted)


@given(st.lists(scope_tokens, max_size=5, unique=True), scope_tokens)
def test_anything_beyond_allowed_is_invalid_scope(allowed, extra):
    if extra in allowed:
        return
    with pytest.raises(InvalidScope):
        grant_scope(" ".join([*allowed, extra]), allowed)


def test_nothing_asked_grants_everything_allowed():
    assert grant_scope(None, ["read", "write"]) == "read write"
    assert grant_scope(None, []) == ""


@pytest.mark.parametrize("raw", ["", " read", "read ", "read  write", 'a"b', "a\\b", "caf\u00e9", "a\tb"])
def test_malformed_scope_is_invalid_scope(raw):
    with pytest.raises(InvalidScope):
        parse_scope(raw)


def test_scope_token_syntax():
    assert is_scope_token("orders:read") and is_scope_token("https://api.example/x")
    assert not any(map(is_scope_token, ["", "a b", 'a"', "a\\", "é", "a\n"]))
