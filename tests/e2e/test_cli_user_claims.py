"""Claims as an operator sets them up: `tokensrv user add|update --attr --group`, the bulk import's
attribute columns, `tokensrv claims check`, and a server started with TOKENSRV_CLAIMS issuing the
claims to a service (checked with PyJWT against the JWKS); a bad claims file stops `serve`."""
from __future__ import annotations

import json
import urllib.request

import jwt

from tests.helpers.cli import assert_one_line_error, cli_json
from tests.helpers.http import add_client, post_form
from tests.helpers.processes import run_cli

PASSWORD = "correct horse battery staple"
RULES = {"scopes": {"department": {"department": {"attribute": "department"}}},
         "clients": {"billing": {"tenant": {"attribute": "tenant"}, "tier": {"value": "gold"}}}}


def test_user_add_and_update_round_trip_through_the_store(live_server):
    server = live_server
    added = cli_json(server, "user", "add", "ann", "--email", "ann@example.org", "--group", "eng", "--group",
                     "ops", "--attr", "department=research", "--attr", "given_name=Ann", "--password-stdin",
                     input=PASSWORD + "\n")
    assert added["groups"] == ["eng", "ops"] and added["attributes"] == {"department": "research",
                                                                         "given_name": "Ann"}
    result = server.cli("user", "update", "ann", "--add-group", "admins", "--remove-group", "ops", "--attr",
                        "department=sales", "--unset-attr", "given_name", "--add-role", "auditor",
                        "--unset-email", "--json")
    updated = json.loads(result.stdout)
    assert '"admin.user_updated"' in result.stderr and "sales" not in result.stderr  # fields named, not values
    shown = cli_json(server, "user", "show", "ann")
    assert shown == updated and shown["sub"] == added["sub"] and shown["email"] is None
    assert shown["groups"] == ["eng", "admins"] and shown["roles"] == ["auditor"]
    assert shown["attributes"] == {"department": "sales"}


def test_bad_attributes_and_groups_are_one_line_and_a_nonzero_exit(live_server):
    server = live_server
    server.cli("user", "add", "ann", "--password-stdin", input=PASSWORD + "\n")
    assert_one_line_error(server.cli("user", "update", "ann", "--attr", "1st=x", check=False), "attribute name")
    assert_one_line_error(server.cli("user", "update", "ann", "--attr", "sub=x", check=False), "'sub'")
    assert_one_line_error(server.cli("user", "update", "ann", "--attr", "updated_at=soon", check=False), "whole")
    too_many = [arg for i in range(33) for arg in ("--add-group", f"g{i}")]
    assert_one_line_error(server.cli("user", "update", "ann", *too_many, check=False), "at most 32 groups")
    assert_one_line_error(server.cli("user", "update", "nobody", "--add-group", "x", check=False), "no user")
    assert cli_json(server, "user", "show", "ann")["groups"] == []  # nothing written


def test_user_import_reads_groups_and_attribute_columns(live_server, tmp_path):
    source = tmp_path / "users.csv"
    source.write_text("username,password,email,roles,groups,department,tenant\n"
                      f"ann,{PASSWORD},ann@example.org,reader,eng;ops,research,acme\n"
                      f"ben,{PASSWORD},,,,,\n"
                      f"cat,{PASSWORD},,,,{'x' * 300},\n")
    result = live_server.cli("user", "import", str(source), "--json", check=False)
    assert json.loads(result.stdout) == {"imported": 2, "failed": 1}
    assert "line 4" in result.stderr and "at most 256" in result.stderr
    users = {u["username"]: u for u in cli_json(live_server, "user", "list")}
    assert users["ann"]["groups"] == ["eng", "ops"]
    assert users["ann"]["attributes"] == {"department": "research", "tenant": "acme"}
    assert users["ben"]["groups"] == [] and users["ben"]["attributes"] == {}


def test_claims_check_and_serve_refuse_a_file_that_overrides_a_registered_claim(redis_url, tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(RULES))
    bad.write_text(json.dumps({"clients": {"billing": {"exp": {"value": 4102444800}}}}))
    checked = run_cli("claims", "check", str(good), "--json")
    assert checked.returncode == 0
    assert json.loads(checked.stdout) == {"scopes": {"department": ["department"]},
                                          "clients": {"billing": ["tenant", "tier"]}}
    assert_one_line_error(run_cli("claims", "check", str(bad)), str(bad), "clients.billing.exp")
    refused = run_cli("serve", env={"TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_CLAIMS": str(bad),
                                    "TOKENSRV_LOG_FORMAT": "text"}, cwd=tmp_path)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "TOKENSRV_CLAIMS" in lines[0] and "clients.billing.exp" in lines[0]


def test_a_service_reads_groups_and_custom_claims_from_the_access_token(start_server, tmp_path):
    rules = tmp_path / "claims.json"
    rules.write_text(json.dumps(RULES))
    server = start_server(TOKENSRV_CLAIMS=str(rules))
    secret = add_client(server, "billing", "--first-party", "--grant-type", "password", "--grant-type",
                        "client_credentials", "--scope", "groups", "--scope", "department", "--scope", "read")
    server.cli("user", "add", "ann", "--group", "eng", "--attr", "department=research", "--attr", "tenant=acme",
               "--password-stdin", input=PASSWORD + "\n")
    with urllib.request.urlopen(server.url + "/.well-known/jwks.json", timeout=30) as resp:
        keys = jwt.PyJWKSet.from_dict(json.load(resp))

    def verified(token: str) -> dict:
        key = keys[jwt.get_unverified_header(token)["kid"]].key
        return jwt.decode(token, key, algorithms=["RS256"], audience="billing")

    status, issued = post_form(server.url + "/oauth2/token", {"grant_type": "password", "username": "ann",
                               "password": PASSWORD, "scope": "groups department"}, "billing", secret)
    assert status == 200, issued
    user_token = verified(issued["access_token"])
    assert user_token["groups"] == ["eng"] and user_token["department"] == "research"
    assert user_token["tenant"] == "acme" and user_token["tier"] == "gold"
    status, issued = post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials", "scope": "read"},
                               "billing", secret)
    assert status == 200, issued
    own = verified(issued["access_token"])
    assert own["tier"] == "gold" and "tenant" not in own and "groups" not in own
    with urllib.request.urlopen(server.url + "/.well-known/openid-configuration", timeout=30) as resp:
        doc = json.load(resp)
    assert "department" in doc["scopes_supported"] and {"tenant", "tier", "groups"} <= set(doc["claims_supported"])
