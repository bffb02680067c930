"""Request parameters (RFC 6749 §3.1): each at most once, empty means omitted, bounded in size."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensrv.errors import InvalidRequest
from tokensrv.oauth.params import MAX_VALUE, for_log, require, single_valued

names = st.text(min_size=1, max_size=20)


@given(st.dictionaries(names, st.text(min_size=1, max_size=50)))
def test_distinct_parameters_pass_through(params):
    assert single_valued(params.items()) == params


@given(st.lists(names, min_size=1, max_size=5, unique=True), st.data())
def test_any_repeated_parameter_is_invalid_request(keys, data):
    repeated = data.draw(st.sampled_from(keys))
    items = [(k, "v") for k in keys] + [(repeated, "other")]
    with pytest.raises(InvalidRequest) as exc:
        single_valued(items)
    assert repr(repeated[:40]) in exc.value.description


def test_empty_values_count_as_omitted():
    assert single_valued([("scope", ""), ("grant_type", "password")]) == {"grant_type": "password"}
    with pytest.raises(InvalidRequest):
        require(single_valued([("grant_type", "")]), "grant_type")


def test_repeated_even_when_one_is_empty():
    with pytest.raises(InvalidRequest):
        single_valued([("scope", ""), ("scope", "read")])


def test_values_are_bounded_and_must_be_text():
    assert single_valued([("a", "x" * MAX_VALUE)])["a"] == "x" * MAX_VALUE
    with pytest.raises(InvalidRequest):
        single_valued([("a", "x" * (MAX_VALUE + 1))])
    with pytest.raises(InvalidRequest):
        single_valued([("file", object())])


def test_require_names_the_missing_parameter():
    with pytest.raises(InvalidRequest) as exc:
        require({}, "refresh_token")
    assert "refresh_token" in exc.value.description and exc.value.status == 400


@given(st.text(min_size=33, max_size=200))
def test_long_values_are_logged_only_by_length(value):
    assert value not in for_log(value) and str(len(value)) in for_log(value)


def test_short_values_are_logged_quoted():
    assert for_log("implicit") == "'implicit'"
