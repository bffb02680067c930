"""tokensrv.verify.http, the framework-neutral part of every adapter: reading credentials, the
answers to refusals, and reading a back-channel logout POST."""
from __future__ import annotations

import json

import pytest

from tokensrv.verify import InsufficientScope, RevokedToken, VerifierUnavailable
from tokensrv.verify.http import (
    FORM,
    MAX_LOGOUT_BODY,
    Refused,
    Verified,
    check_access,
    credentials,
    dpop_algs,
    error_answer,
    logout_tokens,
)

ALGS = dpop_algs(["EdDSA", "ES256"])


def refusal(authorization: list[str]) -> Refused:
    with pytest.raises(Refused) as caught:
        credentials(authorization, "orders", ALGS)
    return caught.value


def test_the_dpop_algorithms_are_named_in_tokensrvs_order() -> None:
    assert ALGS == "ES256 EdDSA"


@pytest.mark.parametrize("authorization", [[], ["Basic dXNlcjpwdw=="], ["Negotiate abc"]])
def test_no_token_is_a_bare_challenge_in_both_schemes(authorization: list[str]) -> None:
    answer = refusal(authorization).answer
    assert answer.status == 401
    assert [v for k, v in answer.headers if k == "WWW-Authenticate"] == [
        'Bearer realm="orders"', 'DPoP realm="orders", algs="ES256 EdDSA"']


@pytest.mark.parametrize("authorization", [["Bearer"], ["Bearer a b"], ["Bearer a", "Bearer b"], ["Bearer é"]])
def test_a_malformed_authorization_header_is_invalid_request(authorization: list[str]) -> None:
    answer = refusal(authorization).answer
    assert (answer.status, json.loads(answer.body)["error"]) == (400, "invalid_request")


def test_credentials_name_their_scheme() -> None:
    assert credentials(["bearer abc.def"], "orders", ALGS) == ("bearer", "abc.def")
    assert credentials(["DPoP abc"], "orders", ALGS) == ("dpop", "abc")


def test_answers_say_the_error_and_never_the_detail() -> None:
    revoked = error_answer(RevokedToken("revoked by jti 1234"), "orders")
    assert (revoked.status, revoked.error) == (401, "invalid_token")
    assert b"1234" not in revoked.body
    unavailable = error_answer(VerifierUnavailable(), "orders")
    assert (unavailable.status, ("Retry-After", "1") in unavailable.headers) == (503, True)
    scope = error_answer(InsufficientScope(["orders:write"]), "orders", ALGS)
    assert ("WWW-Authenticate", 'DPoP realm="orders", error="insufficient_scope", scope="orders:write"') \
        in scope.headers


def test_a_missing_scope_is_answered_in_the_scheme_the_token_came_in() -> None:
    verified = Verified({"scope": "orders:read"}, "dpop", "orders", ALGS)
    check_access(verified, ["orders:read"])
    with pytest.raises(Refused) as caught:
        check_access(verified, ["orders:write"])
    assert caught.value.answer.status == 403
    assert caught.value.answer.headers[1][1].startswith('DPoP realm="orders", error="insufficient_scope"')


def test_logout_tokens_come_from_a_form_body_only() -> None:
    assert logout_tokens(FORM, b"logout_token=a.b.c") == ["a.b.c"]
    assert logout_tokens(FORM + "; charset=UTF-8", b"logout_token=a&logout_token=b") == ["a", "b"]
    assert logout_tokens("application/json", b'{"logout_token": "a.b.c"}') == []
    assert logout_tokens(None, b"logout_token=a.b.c") == []
    assert logout_tokens(FORM, b"logout_token=" + b"a" * MAX_LOGOUT_BODY) == []
    assert logout_tokens(FORM, "logout_token=é".encode()) == []
