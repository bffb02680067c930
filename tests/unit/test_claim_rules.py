"""The claims file (TOKENSRV_CLAIMS) is refused at start with a line naming the file and the entry;
user attributes and groups are bounded; user records written before them still load."""
from __future__ import annotations

import json

import pytest

from tokensrv.claims import MAX_EXTRA_CLAIMS, ClaimsError, check_attributes, parse_attribute
from tokensrv.cli.output import print_table
from tokensrv.config import ConfigError, load_settings
from tokensrv.store import User


def write(tmp_path, doc):
    path = tmp_path / "claims.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize(("doc", "entry"), [
    ({"clients": {"x": {"sub": {"value": "root"}}}}, "clients.x.sub"),
    ({"clients": {"x": {"iss": {"attribute": "tenant"}}}}, "clients.x.iss"),
    ({"clients": {"x": {"exp": {"value": 9999999999}}}}, "clients.x.exp"),
    ({"scopes": {"s": {"scope": {"attribute": "a"}}}}, "scopes.s.scope"),
    ({"scopes": {"s": {"email": {"attribute": "a"}}}}, "scopes.s.email"),  # a standard claim
    ({"clients": {"x": {"groups": {"value": ["admins"]}}}}, "clients.x.groups"),
    ({"scopes": {"profile": {"nick": {"attribute": "a"}}}}, "scopes.profile"),  # a built-in scope
    ({"scopes": {"tokensrv:admin": {"nick": {"attribute": "a"}}}}, "scopes.tokensrv:admin"),  # reserved
    ({"scopes": {"tokensrv:x": {"nick": {"attribute": "a"}}}}, "scopes.tokensrv:x"),  # the prefix is ours
    ({"scopes": {"s": {"c": {"value": 1}}}}, "scopes.s.c"),  # a scope releases attributes
    ({"clients": {"x": {"c": {"value": "v" * 300}}}}, "clients.x.c"),
    ({"clients": {"x": {"c": {"attribute": "a", "value": 1}}}}, "clients.x.c"),
    ({"clients": {"x": {f"c{i}": {"value": i} for i in range(MAX_EXTRA_CLAIMS + 1)}}}, "clients.x"),
    ({"scopes": {"s": {"c": {"attribute": "a"}}}, "clients": {"x": {"c": {"value": 1}}}}, "clients.x.c"),
    ({"claims": {}}, "'claims'"),
    ("{not json", "not JSON"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_entry(tmp_path, doc, entry):
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as refused:
        load_settings({"TOKENSRV_CLAIMS": str(path)})
    message = str(refused.value)
    assert message.startswith(f"TOKENSRV_CLAIMS: {path}: ") and entry in message and "\n" not in message


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"TOKENSRV_CLAIMS": str(tmp_path / "nowhere.json")})


def test_a_good_file_is_precomputed_per_client(tmp_path):
    path = write(tmp_path, {"scopes": {"department": {"department": {"attribute": "department"}}},
                            "clients": {"billing": {"tenant": {"attribute": "tenant"}, "tier": {"value": "gold"}}}})
    rules = load_settings({"TOKENSRV_CLAIMS": str(path)}).claims
    assert rules.scopes == {"department": (("department", "department"),)}
    assert rules.clients["billing"].static == {"tier": "gold"}
    assert rules.clients["billing"].from_user == (("tenant", "tenant"),)
    assert "department" in rules.scope_names and {"tier", "tenant", "department"} <= set(rules.claim_names)
    assert load_settings({}).claims.clients == {}  # no file: no rules


@pytest.mark.parametrize(("text", "problem"), [
    ("department", "KEY=VALUE"),
    ("1abc=x", "attribute name"),
    ("sub=x", "cannot be an attribute"),
    ("email=a@b", "cannot be an attribute"),
    ("email_verified=yes", "true or false"),
    ("updated_at=yesterday", "whole number"),
    ("updated_at=\u00b2", "whole number"),  # a digit to str.isdigit(), not to int(): UserInfo answered 500
    ("address=Main St", "JSON object"),
    ("note=" + "x" * 300, "at most 256"),
])
def test_attributes_are_bounded(text, problem):
    with pytest.raises(ClaimsError, match=problem):
        parse_attribute(text)


def test_groups_and_attribute_counts_are_bounded():
    with pytest.raises(ClaimsError, match="at most 32 groups"):
        check_attributes({}, tuple(f"g{i}" for i in range(33)))
    with pytest.raises(ClaimsError, match="group"):
        check_attributes({}, (" padded",))
    with pytest.raises(ClaimsError, match="at most 32 attributes"):
        check_attributes({f"a{i}": "v" for i in range(33)}, ())


def test_a_record_from_before_groups_and_attributes_still_loads():
    old = {"sub": "s1", "username": "ann", "password_hash": "h", "email": None, "roles": ["r"], "disabled": False,
           "created_at": 1, "not_before_ms": 0}
    user = User.from_json(old)
    assert user.groups == () and user.attributes == ()
    again = User.from_json(json.loads(json.dumps(user.to_json())))
    assert again == user and json.loads(json.dumps(user.to_json()))["attributes"] == {}


def test_user_list_shows_attributes_as_key_value_pairs(capsys):
    ann = {"username": "ann", "groups": ["eng", "ops"], "attributes": {"department": "research", "tenant": "acme"}}
    print_table([ann, {"username": "ben", "groups": [], "attributes": {}}])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["ann", "eng,ops", "department=research,tenant=acme"]
    assert lines[2].split() == ["ben", "-", "-"]
