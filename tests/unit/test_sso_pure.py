"""Pure parts of the browser flows: building redirect URLs, origins for the refresh cookie, PKCE
value syntax, the prompt and max_age parameters."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensrv.errors import InvalidRequest
from tokensrv.oauth.browser.authorize import PKCE_VALUE, _max_age, _prompt, with_params
from tokensrv.oauth.clients.origins import origin_of

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=4))
def test_with_params_round_trips_and_keeps_the_registered_query(params):
    uri = "https://client.example/cb?tenant=a%20b"
    built = with_params(uri, params)
    assert built.startswith(uri)
    parsed = parse_qs(urlsplit(built).query, keep_blank_values=True)
    assert parsed.pop("tenant") == ["a b"] or "tenant" in params
    for name, value in params.items():
        if name != "tenant":
            assert parsed[name] == [value]


def test_with_params_leaves_out_none():
    assert with_params("https://c.example/cb", {"code": "x", "state": None}) == "https://c.example/cb?code=x"


@pytest.mark.parametrize(("uri", "origin"), [
    ("https://app.example/cb", "https://app.example"),
    ("https://APP.example:443/cb?x=1", "https://app.example"),
    ("https://app.example:8443/cb", "https://app.example:8443"),
    ("http://127.0.0.1:9000/cb", "http://127.0.0.1:9000"),
    ("http://localhost:80/cb", "http://localhost"),
    ("http://[::1]:9000/cb", "http://[::1]:9000"),
    ("com.example.app:/callback", None),
])
def test_origin_of(uri, origin):
    assert origin_of(uri) == origin


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_pkce_values_of_the_right_syntax_match(value):
    assert PKCE_VALUE.match(value)


@given(st.text(min_size=0, max_size=200))
def test_pkce_values_outside_the_syntax_do_not_match(value):
    valid = 43 <= len(value) <= 128 and all(c in UNRESERVED for c in value)
    assert bool(PKCE_VALUE.match(value)) == valid


@pytest.mark.parametrize(("raw", "parsed"), [
    (None, ()), ("login", ("login",)), ("none", ("none",)), ("login login", ("login",)),
])
def test_prompt(raw, parsed):
    assert _prompt({} if raw is None else {"prompt": raw}) == parsed


@pytest.mark.parametrize("raw", ["none login", "select_account", "none consent"])
def test_prompt_refused(raw):
    with pytest.raises(InvalidRequest):
        _prompt({"prompt": raw})


@pytest.mark.parametrize(("raw", "parsed"), [(None, None), ("0", 0), ("3600", 3600)])
def test_max_age(raw, parsed):
    assert _max_age({} if raw is None else {"max_age": raw}) == parsed


@pytest.mark.parametrize("raw", ["-1", "1.5", "soon", "1" * 11, "١٢"])
def test_max_age_refused(raw):
    with pytest.raises(InvalidRequest):
        _max_age({"max_age": raw})
