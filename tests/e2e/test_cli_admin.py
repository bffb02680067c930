"""`tokensrv client ...` and `tokensrv user ...` as an operator runs them, against a live server:
what they print, what they change at the token endpoint, and one-line errors for bad input."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.helpers.cli import assert_one_line_error, cli_json, http_post
from tests.helpers.oauth import PASSWORD
from tests.helpers.ports import free_port


def test_a_client_made_with_the_cli_gets_a_token_over_http(live_server):
    created = cli_json(live_server, "client", "add", "--id", "billing", "--grant-type", "client_credentials",
                       "--scope", "invoices:read", "--scope", "invoices:write", "--audience", "billing-api")
    assert set(created) == {"client_id", "client_secret"} and created["client_id"] == "billing"
    assert len(base64.urlsafe_b64decode(created["client_secret"] + "==")) >= 32  # at least 256 bits
    status, body = http_post(live_server.url + "/oauth2/token",
                             {"grant_type": "client_credentials", "scope": "invoices:read"},
                             "billing", created["client_secret"])
    assert status == 200 and body["token_type"] == "Bearer" and body["scope"] == "invoices:read"
    status, body = http_post(live_server.url + "/oauth2/token", {"grant_type": "client_credentials"},
                             "billing", "not-the-secret")
    assert (status, body["error"]) == (401, "invalid_client")


def test_client_list_show_remove(live_server):
    added = cli_json(live_server, "client", "add", "--id", "svc", "--grant-type", "client_credentials")
    secret = added["client_secret"]
    public = cli_json(live_server, "client", "add", "--id", "spa", "--public",
                      "--redirect-uri", "https://spa.example/cb", "--redirect-uri", "http://127.0.0.1:5173/cb",
                      "--post-logout-redirect-uri", "https://spa.example/")
    assert public == {"client_id": "spa", "client_secret": None}
    cli_json(live_server, "client", "add", "--id", "mobile", "--first-party", "--grant-type", "password",
             "--grant-type", "refresh_token", "--scope", "openid")
    listed = cli_json(live_server, "client", "list")
    assert [c["client_id"] for c in listed] == ["mobile", "spa", "svc"]
    shown = cli_json(live_server, "client", "show", "spa")
    assert shown["type"] == "public" and shown["redirect_uris"] == ["https://spa.example/cb", "http://127.0.0.1:5173/cb"]
    assert shown["grant_types"] == ["authorization_code", "refresh_token"]
    assert shown["post_logout_redirect_uris"] == ["https://spa.example/"]
    assert "secret_digest" not in json.dumps(listed) + json.dumps(shown)
    mobile = cli_json(live_server, "client", "show", "mobile")
    assert mobile["first_party"] is True and mobile["type"] == "confidential"
    table = live_server.cli("client", "list").stdout  # the human format
    assert table.splitlines()[0].startswith("CLIENT_ID") and "svc" in table
    live_server.cli("client", "remove", "svc")
    assert [c["client_id"] for c in cli_json(live_server, "client", "list")] == ["mobile", "spa"]
    status, body = http_post(live_server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "svc", secret)
    assert (status, body["error"]) == (401, "invalid_client")


CLIENT_ADD_MISTAKES = [
    (["--id", "dup"], ["already exists"]),
    (["--id", "bad id!"], ["client id"]),
    (["--id", "x", "--redirect-uri", "not a uri"], ["redirect URI"]),
    (["--id", "x", "--redirect-uri", "https://app.example/cb#frag"], ["redirect URI"]),
    (["--id", "x", "--redirect-uri", "http://app.example/cb"], ["https"]),
    (["--id", "x", "--grant-type", "implicit"], ["unknown grant type", "implicit"]),
    (["--id", "x", "--public", "--grant-type", "client_credentials"], ["public"]),
    (["--id", "x", "--grant-type", "password"], ["first-party"]),
    (["--id", "x", "--grant-type", "authorization_code"], ["redirect-uri"]),
    (["--id", "x", "--scope", "two words"], ["scope"]),
    ([], ["--id"]),
    (["--id", "x", "--no-such-flag"], ["--no-such-flag"]),
]


def test_client_add_bad_input_is_one_line(live_server):
    """One server for all the cases: each is a separate CLI process against the same store."""
    live_server.cli("client", "add", "--id", "dup", "--grant-type", "client_credentials")
    for args, words in CLIENT_ADD_MISTAKES:
        assert_one_line_error(live_server.cli("client", "add", *args, check=False), *words)
    assert [c["client_id"] for c in cli_json(live_server, "client", "list")] == ["dup"]  # nothing half-made


def test_client_show_and_remove_of_an_unknown_id(live_server):
    for action in ("show", "remove"):
        assert_one_line_error(live_server.cli("client", action, "ghost", check=False), "ghost")


def test_an_unreachable_store_is_one_line(live_server):
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["client", "list"], ["user", "revoke", "alice"]):
        result = live_server.cli(*args, "--redis-url", url, check=False)
        assert_one_line_error(result, "store")
    assert_one_line_error(live_server.cli("client", "list", "--redis-url", "http://x", check=False),
                          "--redis-url")  # named as the user gave it


def login(server, username: str, password: str, secret: str) -> tuple[int, dict[str, Any]]:
    return http_post(server.url + "/oauth2/token",
                     {"grant_type": "password", "username": username, "password": password}, "mobile", secret)


@pytest.fixture
def mobile(live_server) -> str:
    return cli_json(live_server, "client", "add", "--id", "mobile", "--first-party", "--grant-type", "password",
                    "--grant-type", "refresh_token", "--scope", "profile")["client_secret"]


def test_users_from_add_to_remove(live_server, mobile):
    added = cli_json(live_server, "user", "add", "Alice", "--email", "alice@example.org", "--role", "admin",
                     "--role", "billing", "--password-stdin", input=PASSWORD + "\n")
    assert added["username"] == "Alice" and added["roles"] == ["admin", "billing"] and len(added["sub"]) >= 16
    assert "password" not in json.dumps(added) and PASSWORD not in json.dumps(added)
    status, body = login(live_server, "alice", PASSWORD, mobile)
    assert status == 200, body
    status, body = http_post(live_server.url + "/oauth2/introspect", {"token": body["access_token"]}, "mobile", mobile)
    assert body["active"] is True and body["sub"] == added["sub"]
    assert [u["username"] for u in cli_json(live_server, "user", "list")] == ["Alice"]
    assert cli_json(live_server, "user", "show", "ALICE")["sub"] == added["sub"]
    assert cli_json(live_server, "user", "disable", "alice")["disabled"] is True
    assert login(live_server, "alice", PASSWORD, mobile)[0] == 400
    assert cli_json(live_server, "user", "enable", "alice")["disabled"] is False
    assert login(live_server, "alice", PASSWORD, mobile)[0] == 200
    live_server.cli("user", "remove", "alice")
    assert login(live_server, "alice", PASSWORD, mobile)[0] == 400
    assert cli_json(live_server, "user", "list") == []


def test_a_password_change_ends_every_session_of_that_user(live_server, mobile):
    live_server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    live_server.cli("user", "add", "bob", "--password-stdin", input=PASSWORD + "\n")
    sessions = [login(live_server, "alice", PASSWORD, mobile)[1] for _ in range(2)]
    bob = login(live_server, "bob", PASSWORD, mobile)[1]
    live_server.cli("user", "passwd", "alice", "--password-stdin", input="a whole new password\n")
    for issued in sessions:
        status, body = http_post(live_server.url + "/oauth2/token",
                                 {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
                                 "mobile", mobile)
        assert (status, body["error"]) == (400, "invalid_grant")
        status, body = http_post(live_server.url + "/oauth2/introspect", {"token": issued["access_token"]},
                                 "mobile", mobile)
        assert body == {"active": False}
    assert login(live_server, "alice", PASSWORD, mobile)[0] == 400
    status, body = http_post(live_server.url + "/oauth2/introspect", {"token": bob["access_token"]}, "mobile", mobile)
    assert body["active"] is True  # only that user


def test_user_revoke_signs_out_everywhere(live_server, mobile):
    live_server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    issued = login(live_server, "alice", PASSWORD, mobile)[1]
    live_server.cli("user", "revoke", "alice")
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    status, body = http_post(live_server.url + "/oauth2/token", refresh, "mobile", mobile)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert login(live_server, "alice", PASSWORD, mobile)[0] == 200  # the password still works


USER_MISTAKES = [
    (["user", "add", "alice", "--password-stdin"], PASSWORD + "\n", ["already exists"]),
    (["user", "add", "ALICE", "--password-stdin"], PASSWORD + "\n", ["already exists"]),
    (["user", "add", "carol", "--password-stdin"], "short\n", ["at least 8"]),
    (["user", "add", "carol", "--password-stdin"], "", ["standard input"]),
    (["user", "add", "carol"], "", ["--password-stdin"]),  # no terminal to prompt on
    (["user", "add", " carol", "--password-stdin"], PASSWORD + "\n", ["username"]),
    (["user", "add", "carol", "--email", "not-an-address", "--password-stdin"], PASSWORD + "\n", ["email"]),
    (["user", "add", "carol", "--password", PASSWORD], "", ["--password"]),  # never on the command line
    (["user", "passwd", "ghost", "--password-stdin"], PASSWORD + "\n", ["ghost"]),
    (["user", "passwd", "alice", "--password-stdin"], "short\n", ["at least 8"]),
    (["user", "disable", "ghost"], None, ["ghost"]),
    (["user", "enable", "ghost"], None, ["ghost"]),
    (["user", "remove", "ghost"], None, ["ghost"]),
    (["user", "revoke", "ghost"], None, ["ghost"]),
    (["user", "show", "ghost"], None, ["ghost"]),
    (["user", "frobnicate", "alice"], None, ["frobnicate"]),
]


def test_user_bad_input_is_one_line(live_server):
    live_server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    for args, stdin, words in USER_MISTAKES:
        result = live_server.cli(*args, input=stdin, check=False)
        assert_one_line_error(result, *words)
        assert PASSWORD not in result.stderr  # not even the one typed on the command line
    assert [u["username"] for u in cli_json(live_server, "user", "list")] == ["alice"]
