"""`tokensrv ... --server URL`: the admin commands through a real `tokensrv serve` admin listener, with
an admin client made directly on the store. The CLI then runs with a store URL that reaches nothing
and no keys folder, so every answer came over HTTP; its output (--json, tables and `show` views)
equals the direct mode's for the same state. A wrong secret, a client that is not an admin, a
server that is not there: one line and exit 1; a command without a route: exit 2. The secret is
only ever in the environment, never in argv, the output or the server's log."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from tests.helpers.assertion import public_jwks
from tests.helpers.cli import assert_one_line_error, cli_json
from tests.helpers.http import add_client, post_form
from tests.helpers.live import LiveServer
from tests.helpers.ports import free_port

APP = "https://app.example.org/cb"
ADMIN_FLAGS = ("--grant-type", "client_credentials", "--admin")


class Remote:
    """The CLI on "another host": only the admin listener's URL and the admin client's credentials."""

    def __init__(self, server: LiveServer, admin_url: str, client_id: str, secret: str | None = None,
                 key_file: Path | None = None) -> None:
        self.server, self.admin_url, self.client_id = server, admin_url, client_id
        self.key_file = key_file
        self.env = {**server.env, "TOKENSRV_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                    "TOKENSRV_KEYS_DIR": "/nonexistent/keys"}
        if secret is not None:
            self.env["TOKENSRV_ADMIN_CLIENT_SECRET"] = secret

    def argv(self, *args: str) -> list[str]:
        auth = ("--private-key", str(self.key_file)) if self.key_file else ()
        return [sys.executable, "-m", "tokensrv", *args, "--server", self.admin_url, "--client-id", self.client_id,
                *auth]

    def run(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.argv(*args), env=self.env, input=input, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"tokensrv {' '.join(args)} --server failed: {result.stderr}")
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.run(*args, "--json", input=input).stdout)


@pytest.fixture
def admin_server(start_server) -> tuple[LiveServer, str]:
    port = free_port()
    return start_server(TOKENSRV_ADMIN_PORT=str(port)), f"http://127.0.0.1:{port}"


@pytest.fixture
def remote(admin_server) -> Remote:
    server, admin_url = admin_server
    return Remote(server, admin_url, "ops", add_client(server, "ops", *ADMIN_FLAGS))


def same_output(remote: Remote, *args: str) -> Any:
    """The command's --json, table or view output through --server equals the direct mode's."""
    direct = cli_json(remote.server, *args)
    assert remote.json(*args) == direct
    assert remote.run(*args).stdout == remote.server.cli(*args).stdout
    return direct


def test_clients_through_the_admin_api(remote):
    server = remote.server
    created = remote.json("client", "add", "--id", "web", "--redirect-uri", APP, "--scope", "read", "--name", "Web")
    assert created["client_id"] == "web" and created["client_secret"]
    assert post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "web",
                     created["client_secret"])[0] == 200
    same_output(remote, "client", "list")
    same_output(remote, "client", "show", "web")
    updated = remote.json("client", "update", "web", "--add-redirect-uri", "https://app.example.org/cb2",
                          "--remove-scope", "read", "--add-scope", "write", "--name", "Web app", "--require-mfa")
    shown = same_output(remote, "client", "show", "web")
    assert updated == shown
    assert shown["redirect_uris"] == [APP, "https://app.example.org/cb2"] and shown["scopes"] == ["write"]
    assert shown["client_name"] == "Web app" and shown["require_mfa"] is True
    assert_one_line_error(remote.run("client", "update", "web", "--remove-scope", "nope", check=False),
                          "--remove-scope 'nope'", "no such value")
    rotated = remote.json("client", "rotate-secret", "web", "--overlap", "0")
    assert rotated["client_secret"] != created["client_secret"] and rotated["previous_secret_expires_at"] is None
    for secret, status in ((created["client_secret"], 401), (rotated["client_secret"], 200)):
        assert post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "web", secret)[0] \
            == status
    assert remote.json("client", "remove", "web") == {"removed": "web"}
    assert_one_line_error(server.cli("client", "show", "web", check=False), "no client 'web'")
    assert_one_line_error(remote.run("client", "show", "web", check=False), "no client 'web'")
    audit = [json.loads(line) for line in server.log().splitlines() if '"admin.client_' in line]
    assert {(a["event"], a["caller"], a["via"]) for a in audit} >= {
        ("admin.client_added", "ops", "api"), ("admin.client_updated", "ops", "api"),
        ("admin.client_secret_rotated", "ops", "api"), ("admin.client_removed", "ops", "api")}


def test_users_through_the_admin_api(remote):
    server = remote.server
    added = remote.json("user", "add", "ann", "--email", "ann@example.org", "--role", "dev", "--group", "staff",
                        "--attr", "locale=en", "--password-stdin", input="correct horse battery staple\n")
    assert added["username"] == "ann" and added["roles"] == ["dev"]
    same_output(remote, "user", "list")
    assert same_output(remote, "user", "show", "ann") == added
    updated = remote.json("user", "update", "ann", "--add-role", "ops", "--remove-role", "dev", "--attr", "locale=fr",
                          "--unset-email")
    assert updated == cli_json(server, "user", "show", "ann")
    assert (updated["sub"], updated["roles"], updated["email"]) == (added["sub"], ["ops"], None)
    assert updated["attributes"] == {"locale": "fr"} and updated["groups"] == ["staff"]
    assert remote.json("user", "disable", "ann")["disabled"] is True
    assert cli_json(server, "user", "show", "ann")["disabled"] is True
    assert remote.json("user", "enable", "ann")["disabled"] is False
    assert remote.json("user", "passwd", "ann", "--password-stdin", input="another horse battery\n") \
        == cli_json(server, "user", "show", "ann")
    assert remote.json("user", "revoke", "ann")["sub"] == added["sub"]
    assert remote.json("user", "consents", "ann") == cli_json(server, "user", "consents", "ann") == []
    assert remote.json("user", "remove", "ann") == {"removed": "ann"}
    assert_one_line_error(remote.run("user", "show", "ann", check=False), "no user 'ann'")
    assert cli_json(server, "user", "list") == []


def test_keys_and_token_revocation_through_the_admin_api(remote):
    server = remote.server
    before = same_output(remote, "keys", "list")
    rotated = remote.json("keys", "rotate")
    assert rotated == cli_json(server, "keys", "list") and rotated != before
    secret = add_client(server, "svc", "--grant-type", "client_credentials")
    status, tokens = post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "svc", secret)
    assert status == 200
    revoked = remote.json("token", "revoke", "-", input=tokens["access_token"] + "\n")
    assert revoked["revoked"] is True and revoked["client_id"] == "svc"
    assert cli_json(server, "token", "introspect", "-", input=tokens["access_token"] + "\n")["active"] is False


def test_a_private_key_jwt_admin_client(admin_server, tmp_path):
    server, admin_url = admin_server
    key = ECKey.generate_key("P-256", parameters={"kid": "ops-key"})
    (tmp_path / "jwks.json").write_text(json.dumps(public_jwks(key)))
    (tmp_path / "ops.pem").write_bytes(key.as_pem(private=True))
    server.cli("client", "add", "--id", "ops-jwt", "--auth-method", "private_key_jwt", "--jwks-file",
               str(tmp_path / "jwks.json"), *ADMIN_FLAGS)
    remote = Remote(server, admin_url, "ops-jwt", key_file=tmp_path / "ops.pem")
    assert remote.json("client", "show", "ops-jwt") == cli_json(server, "client", "show", "ops-jwt")


def test_refusals_are_one_line(remote, admin_server):
    server, admin_url = admin_server
    secret = remote.env["TOKENSRV_ADMIN_CLIENT_SECRET"]
    wrong = Remote(server, admin_url, "ops", "not-the-secret")
    assert_one_line_error(wrong.run("client", "list", check=False), "client 'ops'", "secret or key is wrong")
    plain = Remote(server, admin_url, "svc", add_client(server, "svc", "--grant-type", "client_credentials"))
    assert_one_line_error(plain.run("client", "list", check=False), "client 'svc' is not an admin client")
    gone = Remote(server, f"http://127.0.0.1:{free_port()}", "ops", secret)
    result = gone.run("client", "list", check=False)
    assert_one_line_error(result, "cannot reach http://127.0.0.1:", "Connection refused")
    assert result.returncode == 1
    without = remote.run("keys", "init", check=False)
    assert (without.returncode, without.stderr) == (2, "tokensrv keys init: not available with --server\n")
    assert_one_line_error(remote.run("client", "list", "--client-secret", secret, check=False), "--client-secret")
    for run in (remote.run("client", "list"), wrong.run("client", "list", check=False)):
        assert secret not in " ".join(run.args) + run.stdout + run.stderr
    assert secret not in server.log()
