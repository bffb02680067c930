"""`tokensrv claims show|set|clear` against a running server: the document set by the CLI is
followed by the server without a restart (discovery, the next token), an unchanged document is no
change, a bad one is refused with one line naming the file and the entry, and clearing falls back."""
from __future__ import annotations

import json
import urllib.request

from tests.helpers.cli import assert_one_line_error, cli_json
from tests.helpers.http import add_client, post_form
from tests.helpers.oauth import claims_of
from tests.helpers.poll import eventually_sync

PASSWORD = "correct horse battery staple"
RULES = {"scopes": {"department": {"department": {"attribute": "department"}}},
         "clients": {"billing": {"tier": {"value": "gold"}}}}


def scopes_supported(server) -> list[str]:
    with urllib.request.urlopen(server.url + "/.well-known/openid-configuration", timeout=30) as resp:
        return list(json.load(resp)["scopes_supported"])


def test_claims_set_show_clear_against_a_running_server(live_server, tmp_path):
    server = live_server
    assert cli_json(server, "claims", "show") == {"source": "built-in", "version": None,
                                                  "document": {"scopes": {}, "clients": {}}}
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(RULES))
    result = server.cli("claims", "set", str(path), "--json")
    assert json.loads(result.stdout) == {"changed": True, "version": 1, "scopes": ["department"],
                                         "clients": ["billing"]}
    assert '"admin.claim_rules_set"' in result.stderr
    eventually_sync(lambda: "department" in scopes_supported(server), "the server lists the new scope")
    secret = add_client(server, "billing", "--first-party", "--grant-type", "password", "--scope", "department")
    server.cli("user", "add", "ann", "--attr", "department=research", "--password-stdin", input=PASSWORD + "\n")
    status, issued = post_form(server.url + "/oauth2/token", {"grant_type": "password", "username": "ann",
                               "password": PASSWORD, "scope": "department"}, "billing", secret)
    assert status == 200, issued
    claims = claims_of(issued["access_token"])
    assert claims["department"] == "research" and claims["tier"] == "gold"
    shown = cli_json(server, "claims", "show")
    assert shown["source"] == "store" and shown["version"] == 1 and shown["document"] == RULES
    plain = server.cli("claims", "show").stdout
    assert "source:" in plain and "department=department" in plain

    again = server.cli("claims", "set", str(path), "--json")
    assert json.loads(again.stdout)["changed"] is False and "admin.claim_rules" not in again.stderr

    cleared = server.cli("claims", "clear", "--json")
    assert json.loads(cleared.stdout) == {"changed": True, "version": 2}
    assert "admin.claim_rules_cleared" in cleared.stderr
    eventually_sync(lambda: "department" not in scopes_supported(server), "the server drops the scope")
    assert cli_json(server, "claims", "show")["source"] == "built-in"


def test_a_bad_document_is_one_line_naming_the_file_and_the_entry(live_server, tmp_path):
    server = live_server
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"clients": {"billing": {"exp": {"value": 4102444800}}}}))
    assert_one_line_error(server.cli("claims", "set", str(bad), check=False), str(bad), "clients.billing.exp")
    bad.write_text("{not json")
    assert_one_line_error(server.cli("claims", "set", str(bad), check=False), str(bad), "not JSON")
    assert_one_line_error(server.cli("claims", "set", str(tmp_path / "missing.json"), check=False), "cannot read")
    assert cli_json(server, "claims", "show")["source"] == "built-in"  # nothing stored
