"""Operator commands: `token introspect | revoke`, `status`, `user import`."""
from __future__ import annotations

import json

from tests.helpers.http import add_client, post_form

PASSWORD = "correct horse battery staple"


def test_token_introspect_and_revoke_read_the_token_from_stdin(live_server):
    server = live_server
    secret = add_client(server, "svc", "--grant-type", "client_credentials", "--scope", "read")
    status, issued = post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "svc", secret)
    assert status == 200
    access = issued["access_token"]
    described = json.loads(server.cli("token", "introspect", "-", "--json", input=access + "\n").stdout)
    assert described["active"] and described["client_id"] == "svc" and described["scope"] == "read"
    revoked = server.cli("token", "revoke", "-", "--json", input=access + "\n")
    assert json.loads(revoked.stdout)["revoked"] is True
    assert access not in revoked.stdout + revoked.stderr
    status, answer = post_form(server.url + "/oauth2/introspect", {"token": access}, "svc", secret)
    assert (status, answer) == (200, {"active": False})  # the running server agrees
    again = json.loads(server.cli("token", "revoke", access, "--json").stdout)  # an argument works too
    assert again["revoked"] is False
    assert json.loads(server.cli("token", "introspect", "-", "--json", input="not-a-token\n").stdout) == {
        "active": False}


def test_token_revoke_of_a_refresh_token_ends_its_family(live_server):
    server = live_server
    secret = add_client(server, "app", "--first-party", "--grant-type", "password", "--grant-type",
                        "refresh_token", "--scope", "read")
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    status, issued = post_form(server.url + "/oauth2/token", {
        "grant_type": "password", "username": "alice", "password": PASSWORD}, "app", secret)
    assert status == 200
    described = json.loads(server.cli("token", "introspect", "-", "--json",
                                      input=issued["refresh_token"]).stdout)
    assert described["active"] and described["token_type"] == "refresh_token"
    result = json.loads(server.cli("token", "revoke", "-", "--json", input=issued["refresh_token"]).stdout)
    assert result["revoked"] and result["token_type"] == "refresh_token"
    status, answer = post_form(server.url + "/oauth2/token", {
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}, "app", secret)
    assert (status, answer["error"]) == (400, "invalid_grant")
    status, answer = post_form(server.url + "/oauth2/introspect", {"token": issued["access_token"]}, "app", secret)
    assert answer == {"active": False}  # the family's access token went with it


def test_token_commands_without_a_token_fail_in_one_line(live_server):
    result = live_server.cli("token", "introspect", "-", input="", check=False)
    assert result.returncode == 1
    expected = "tokensrv: error: no token given (pass - and the token on standard input)"
    assert result.stderr.strip().splitlines() == [expected]
    help_text = live_server.cli("token", "revoke", "--help").stdout
    assert "standard input" in help_text and "history" in help_text


def test_status_reports_store_keys_schedule_and_counts(live_server):
    add_client(live_server, "svc", "--grant-type", "client_credentials")
    report = json.loads(live_server.cli("status", "--json").stdout)
    assert report["store"]["reachable"] and report["store"]["latency_ms"] >= 0
    assert "@" not in report["store"]["url"] or "***" in report["store"]["url"]
    states = sorted(k["state"] for k in report["keys"])
    assert "current" in states and len(states) >= 1
    step = report["next_rotation_step"]
    assert step["step"] and isinstance(step["due_at"], int) and step["in_seconds"] >= 0
    assert (report["clients"], report["users"]) == (1, 0)
    human = live_server.cli("status").stdout
    assert "reachable" in human and "next key rotation step" in human and "CURRENT" not in human
    assert "current" in human and "KID" in human


def test_user_import_hashes_in_parallel_and_reports_bad_rows(live_server, tmp_path):
    passwords = ["first-password-1", "second-password-2", "third-password-3"]
    rows = ["username,password,email,roles",
            f"ann,{passwords[0]},ann@example.org,reader;writer",
            f"ben,{passwords[1]}",
            "cat,short",  # line 4: too short a password
            "dan",  # line 5: no password column
            f"ann,{passwords[2]}",  # line 6: a duplicate
            f"eve,{passwords[2]},,admin"]
    source = tmp_path / "users.csv"
    source.write_text("\n".join(rows) + "\n")
    result = live_server.cli("user", "import", str(source), "--json", check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"imported": 3, "failed": 3}
    problems = [line for line in result.stderr.splitlines() if line.startswith("tokensrv: line")]
    assert [p.split(":")[1].strip() for p in problems] == ["line 4", "line 5", "line 6"], result.stderr
    assert "at least 8 characters" in problems[0] and "columns" in problems[1] and "ann" in problems[2]
    assert "hashing passwords" in result.stderr and "4/4" in result.stderr
    for secret in [*passwords, "short"]:
        assert secret not in result.stdout + result.stderr
    users = {u["username"]: u for u in json.loads(live_server.cli("user", "list", "--json").stdout)}
    assert set(users) == {"ann", "ben", "eve"}
    assert users["ann"]["roles"] == ["reader", "writer"] and users["ann"]["email"] == "ann@example.org"
    assert users["eve"]["roles"] == ["admin"] and users["eve"]["email"] is None
    secret = add_client(live_server, "app", "--first-party", "--grant-type", "password")
    status, _ = post_form(live_server.url + "/oauth2/token", {
        "grant_type": "password", "username": "ben", "password": passwords[1]}, "app", secret)
    assert status == 200  # an imported password works

    good = tmp_path / "more.csv"
    good.write_text(f"fay,{passwords[0]}\n")
    assert live_server.cli("user", "import", str(good)).returncode == 0
    missing = live_server.cli("user", "import", str(tmp_path / "nope.csv"), check=False)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_status_without_a_store_fails_in_one_line(live_server):
    result = live_server.cli("status", "--redis-url", "redis://127.0.0.1:1/0", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokensrv: error: --redis-url: cannot reach")
