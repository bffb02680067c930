"""The hypothesis settings, strategies and answer checks of the fuzz tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.helpers import oauth as oauth_helpers

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


LEAKS = ("traceback", "redis", "wrongtype", "err ", "/work", "site-packages", ".py", "valkey", "lua")


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=80)


PARAMS = ("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id",
          "client_secret", "username", "password", "token", "token_type_hint", "response_type", "state",
          "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "request", "csrf_token",
          "id_token_hint", "post_logout_redirect_uri", "access_token", "resource", "audience")


INTERESTING = st.sampled_from([
    "authorization_code", "refresh_token", "client_credentials", "password", "S256", "plain", "code",
    "web", "svc", "alice", "none", "login", "-1", "0", "1e309", "99999999999999999999", "openid",
    "access_token", "refresh_token", "http://127.0.0.1:9000/cb", "a" * 64, "a" * 43, "\x00", "%00", "..",
    "eyJhbGciOiJub25lIn0.e30.", "tokensrv:client:svc", "*", "\r\n", "null", "[]", "{}",
])


values = st.one_of(text, INTERESTING, st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


params = st.dictionaries(st.one_of(st.sampled_from(PARAMS), ascii_text), values, max_size=8)


@dataclass
class Known:
    secrets: tuple[str, ...]
    svc: oauth_helpers.Registered


async def check_answer(resp: Any, sent: str, known: Known) -> None:
    body = await resp.read()
    text_body = body.decode("utf-8", "replace").lower()
    assert resp.status < 500, text_body
    for marker in LEAKS:
        if marker not in sent.lower():
            assert marker not in text_body, (marker, text_body[:500])
    for secret in known.secrets:
        assert secret not in text_body
    if resp.content_type == "application/json" and resp.status >= 400:
        error = (await resp.json()).get("error")
        assert isinstance(error, str) and error.replace("_", "").isalpha()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3), max_leaves=6)
