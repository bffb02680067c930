"""Logs of a scripted run, server and CLI alike: one structured line per request with its request
id and no query string, audit events for what matters, and not one token, secret, password or
private key anywhere."""
from __future__ import annotations

import json
import urllib.request

from tests.helpers.http import post_form

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "zebra-WRONG-4711-password"


def lines_of(*texts: str) -> list[str]:
    return [line for text in texts for line in text.splitlines() if line.strip()]


def test_a_scripted_run_logs_events_and_no_secret(start_server, tmp_path):
    server = start_server(TOKENSRV_LOG_LEVEL="debug")  # the most it ever logs: still no secret
    stderr: list[str] = []

    def cli(*args: str, input: str | None = None) -> str:
        result = server.cli(*args, input=input)
        stderr.append(result.stderr)
        return result.stdout

    secret = json.loads(cli("client", "add", "--id", "app", "--first-party", "--grant-type", "password",
                            "--grant-type", "refresh_token", "--scope", "openid", "--scope", "read",
                            "--json"))["client_secret"]
    cli("client", "list")
    sub = json.loads(cli("user", "add", "alice", "--password-stdin", "--json", input=PASSWORD + "\n"))["sub"]
    token_url = server.url + "/oauth2/token"
    status, first = post_form(token_url, {"grant_type": "password", "username": "alice", "password": PASSWORD,
                                          "scope": "openid read"}, "app", secret)
    assert status == 200 and "id_token" in first
    status, second = post_form(token_url, {"grant_type": "refresh_token",
                                           "refresh_token": first["refresh_token"]}, "app", secret)
    assert status == 200
    status, described = post_form(server.url + "/oauth2/introspect", {"token": second["access_token"]},
                                  "app", secret)
    assert status == 200 and described["active"]
    cli("token", "introspect", "-", input=first["access_token"] + "\n")
    cli("token", "revoke", "-", input=first["access_token"] + "\n")
    status, _ = post_form(server.url + "/oauth2/revoke", {"token": second["refresh_token"]}, "app", secret)
    assert status == 200
    status, _ = post_form(token_url, {"grant_type": "password", "username": "alice",
                                      "password": WRONG_PASSWORD}, "app", secret)
    assert status == 400
    cli("keys", "rotate")
    # a token in a query string, and our request id
    request = urllib.request.Request(server.url + "/.well-known/jwks.json?leak=" + second["access_token"],
                                     headers={"X-Request-ID": "trace-42"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["X-Request-ID"] == "trace-42"
    server.stop()  # every line flushed

    logged = lines_of(server.log(), *stderr)
    secrets = {"client secret": secret, "password": PASSWORD, "wrong password": WRONG_PASSWORD}
    for name in ("access_token", "refresh_token", "id_token"):
        secrets[f"first {name}"] = first[name]
        secrets[f"second {name}"] = second.get(name, first[name])
    for key_file in server.keys_dir.glob("*.json"):
        jwk = json.loads(key_file.read_text())["jwk"]
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            if member in jwk:
                secrets[f"{key_file.name} {member}"] = jwk[member]
    for line in logged:
        for name, value in secrets.items():
            assert value not in line, f"the {name} is in a log line: {line[:200]}"
        assert "PRIVATE KEY" not in line and '"d":' not in line
        assert "alice" not in line  # usernames are personal data: the sub stands for them

    entries = [json.loads(line) for line in logged if line.startswith("{")]
    events = [e for e in entries if e["logger"] == "tokensrv.audit"]
    kinds = {e["event"] for e in events}
    assert {"admin.client_added", "admin.user_added", "login.succeeded", "login.failed", "token.issued",
            "revoked", "admin.token_revoked", "admin.keys_rotated"} <= kinds, kinds
    issued = [e for e in events if e["event"] == "token.issued"]
    assert {e["grant_type"] for e in issued} == {"password", "refresh_token"}
    assert all(e["sub"] == sub and e["client_id"] == "app" and e["jti"] for e in issued)
    assert any(e["event"] == "login.succeeded" and e["sub"] == sub for e in events)
    assert any(e["event"] == "revoked" and e["kind"] == "family" for e in events)
    assert any(e["logger"] == "tokensrv.keys" and "rotation step" in e["msg"] for e in entries)

    access = [e for e in entries if e["logger"] == "tokensrv.access"]
    jwks = [e for e in access if e["route"] == "/.well-known/jwks.json" and e["request_id"] == "trace-42"]
    assert len(jwks) == 1 and jwks[0]["path"] == "/.well-known/jwks.json" and jwks[0]["status"] == 200
    token_lines = [e for e in access if e["route"] == "/oauth2/token"]
    assert [e["status"] for e in token_lines] == [200, 200, 400]
    assert all(len(e["request_id"]) >= 8 and e["duration_ms"] >= 0 and e["method"] == "POST" for e in token_lines)
    assert len({e["request_id"] for e in access}) == len(access)  # ours are unique
