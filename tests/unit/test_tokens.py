"""Refresh-token format (base64url of a 16-byte family id and 32 random bytes) and claim shapes."""
from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from tokensrv.oauth.own_tokens import new_refresh_token, parse_refresh_token, refresh_digest


def test_a_new_token_names_its_family_and_carries_256_random_bits():
    token, family_id, digest = new_refresh_token()
    raw = base64.urlsafe_b64decode(token + "==")
    assert len(token) == 64 and len(raw) == 48
    assert parse_refresh_token(token) == family_id and digest == refresh_digest(token)
    assert token not in digest


def test_rotation_keeps_the_family_and_draws_a_new_secret():
    token, family_id, _ = new_refresh_token()
    rotated, same_family, digest = new_refresh_token(family_id)
    assert same_family == family_id and parse_refresh_token(rotated) == family_id
    assert rotated[22:] != token[22:] and digest != refresh_digest(token)


@given(st.binary(min_size=48, max_size=48))
def test_every_canonical_48_byte_value_parses(raw):
    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert parse_refresh_token(token) == base64.urlsafe_b64encode(raw[:16]).rstrip(b"=").decode()


@given(st.text(max_size=100))
def test_anything_else_is_refused_without_raising(text):
    if len(text) == 64:
        try:
            raw = base64.urlsafe_b64decode(text + "==")
        except ValueError:
            raw = b""
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text:
            return  # a canonical token: covered above
    assert parse_refresh_token(text) is None


def test_non_canonical_encodings_are_refused():
    token, _, _ = new_refresh_token()
    assert parse_refresh_token(token + "=") is None
    assert parse_refresh_token(token[:63] + ".") is None
    raw = b"\xfb\xff" * 24  # encodes to '+' and '/' in the standard alphabet, '-' and '_' in base64url
    standard = base64.b64encode(raw).decode()
    assert "+" in standard and "/" in standard
    assert parse_refresh_token(standard) is None
    assert parse_refresh_token(base64.urlsafe_b64encode(raw).decode()) is not None
