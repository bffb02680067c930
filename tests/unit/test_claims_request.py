"""The `claims` request parameter (OIDC Core §5.5): what is read, what is refused, and the acr
requirement the step-up acts on (oauth/browser/step_up.py)."""
from __future__ import annotations

import json

import pytest

from tokensrv.oauth.browser.step_up import UnmetAuthenticationRequirements, requested_acr, told_acr
from tokensrv.oauth.claims_request import NONE, ClaimRequest, InvalidClaims, normalised, parse_claims
from tokensrv.store import AuthorizationRequest

MFA, PWD = "urn:tokensrv:acr:mfa", "urn:tokensrv:acr:pwd"


def request(claims: object = None, acr_values: tuple[str, ...] = ()) -> AuthorizationRequest:
    raw = None if claims is None else normalised(json.dumps(claims))
    return AuthorizationRequest("app", "https://app/cb", False, "openid", claims=raw, acr_values=acr_values)


def test_a_claims_request_is_read_by_member_and_name():
    parsed = parse_claims(json.dumps({
        "id_token": {"acr": {"essential": True, "values": [MFA, PWD]}, "email": None},
        "userinfo": {"name": {"essential": True}, "nickname": {"value": "x"}}, "other": 1}))
    assert parsed.acr == ClaimRequest(True, None, (MFA, PWD)) and parsed.acr.wanted == (MFA, PWD)
    assert parsed.id_token["email"] == ClaimRequest()
    assert parsed.userinfo["name"].essential and parsed.userinfo["nickname"].wanted == ("x",)
    assert parse_claims(None) is NONE and NONE.acr is None


@pytest.mark.parametrize("raw", [
    "", "{", "null", "[]", '"x"', '{"id_token": 1}', '{"userinfo": {"a": []}}', '{"id_token": {"acr": true}}',
    '{"id_token": {"acr": {"essential": 1}}}', '{"id_token": {"acr": {"values": {}}}}',
    '{"id_token": {"acr": {"values": [' + ",".join(["1"] * 17) + "]}}}",
    '{"id_token": {"acr": {"value": [[[[1]]]]}}}',  # too deep
    json.dumps({"userinfo": {f"c{i}": None for i in range(600)}}),  # too big
    '{"id_token": {"acr": null, "acr": null}}',  # a member twice
])
def test_malformed_claims_are_invalid_request(raw):
    with pytest.raises(InvalidClaims) as caught:
        parse_claims(raw)
    assert caught.value.error == "invalid_request" and "claims" in caught.value.description


def test_normalised_round_trips():
    raw = normalised(f' {{ "id_token" : {{ "acr" : {{ "essential" : true , "value" : "{MFA}" }} }} }}')
    assert raw == f'{{"id_token":{{"acr":{{"essential":true,"value":"{MFA}"}}}}}}'
    assert parse_claims(raw).acr == ClaimRequest(True, MFA)


def test_the_acr_asked_essential_beats_acr_values():
    assert requested_acr(request(acr_values=("x", MFA))) == (("x", MFA), False)
    assert requested_acr(request({"id_token": {"acr": {"essential": True, "values": [PWD]}}}, (MFA,))) == (
        (PWD,), True)
    assert requested_acr(request({"id_token": {"acr": {"value": MFA}}})) == ((MFA,), False)


def test_the_acr_told_is_one_asked_for_when_essential():
    mfa_amr, pwd_amr = ("pwd", "otp", "mfa"), ("pwd",)
    assert told_acr(mfa_amr, request({"id_token": {"acr": {"essential": True, "values": [PWD]}}})) == PWD
    assert told_acr(mfa_amr, request(acr_values=(PWD,))) == ""  # voluntary: the sign-in's own
    assert told_acr(pwd_amr, request({"id_token": {"acr": {"essential": True}}})) == ""
    with pytest.raises(UnmetAuthenticationRequirements):
        told_acr(pwd_amr, request({"id_token": {"acr": {"essential": True, "value": MFA}}}))
