"""`tokensrv serve` and `tokensrv keys` as a user runs them: real processes, real Valkey."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.live import wait_ready
from tests.helpers.poll import eventually_sync
from tests.helpers.ports import free_port
from tests.helpers.processes import child_pids, pid_alive, run_cli
from tokensrv.store import keyspace


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


@pytest.mark.parametrize("env, setting", [
    ({"TOKENSRV_ACCESS_TOKEN_TTL": "soon"}, "TOKENSRV_ACCESS_TOKEN_TTL"),
    ({"TOKENSRV_REFRESH_TOKEN_TTL": "-1"}, "TOKENSRV_REFRESH_TOKEN_TTL"),
    ({"TOKENSRV_ISSUER": "not a url"}, "TOKENSRV_ISSUER"),
    ({"TOKENSRV_ISSUER": "https://id.example.com?x=1"}, "TOKENSRV_ISSUER"),
])
def test_bad_configuration_is_one_line_and_a_nonzero_exit(env, setting, redis_url, tmp_path):
    result = run_cli("serve", env={"TOKENSRV_REDIS_URL": redis_url, **env}, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0] and "Traceback" not in result.stderr


def test_unreachable_store_is_one_line_naming_the_setting(tmp_path):
    result = run_cli("serve", env={"TOKENSRV_REDIS_URL": f"redis://:sekrit@127.0.0.1:{free_port()}/0"},
                     cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TOKENSRV_REDIS_URL" in lines[0]
    assert "sekrit" not in result.stderr


def test_port_in_use_is_one_clear_line(redis_url, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env={"TOKENSRV_REDIS_URL": redis_url,
                                                             "TOKENSRV_LOG_FORMAT": "text"}, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (f"tokensrv: error: cannot listen on 127.0.0.1:{port}: the address is already in "
                         "use (set TOKENSRV_PORT or --port)")
    assert "Traceback" not in result.stderr


def test_keys_rotate_shows_the_next_key_in_the_jwks_before_it_signs(start_server):
    server = start_server(TOKENSRV_JWKS_MAX_AGE="2", TOKENSRV_KEY_ROTATION_PERIOD="86400")
    secret = json.loads(server.cli("client", "add", "--id", "svc", "--grant-type",
                                   "client_credentials").stdout)["client_secret"]
    published_before = {k["kid"] for k in get_json(server.url + "/.well-known/jwks.json")["keys"]}
    signing_before = token_kid(server.url, secret)
    server.cli("keys", "rotate")
    # the server completes the rotation as soon as the next key has been published for max-age
    deadline = time.monotonic() + 30  # for both waits below
    signing = eventually_sync(lambda: (kid := token_kid(server.url, secret)) != signing_before and kid,
                              "the rotation to complete", timeout=30, interval=0.1)
    assert signing in published_before, "a key signed before any cache could have seen it"
    # the retired key stays published for its tokens, and a fresh next key appears

    def published() -> set[str]:
        return {k["kid"] for k in get_json(server.url + "/.well-known/jwks.json")["keys"]}

    published_after = eventually_sync(lambda: len(kids := published()) >= 3 and kids, "a new next key published",
                                      timeout=deadline - time.monotonic(), interval=0.1)
    assert signing_before in published_after
    assert len(published_after - published_before) == 1


def token_kid(url: str, secret: str) -> str:
    request = urllib.request.Request(url + "/oauth2/token", data=b"grant_type=client_credentials", headers={
        "Authorization": "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode(),
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        token = json.load(resp)["access_token"]
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_keys_commands_need_no_running_server(redis_url, tmp_path):
    env = {"TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(tmp_path / "keys")}
    listed = run_cli("keys", "list", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    made = run_cli("keys", "init", "--json", env=env)
    assert made.returncode == 0 and sorted(k["state"] for k in json.loads(made.stdout)) == ["current", "next"]
    again = run_cli("keys", "init", "--json", env=env)
    assert json.loads(again.stdout) == json.loads(made.stdout)  # init is idempotent
    for path in (tmp_path / "keys").glob("*.json"):
        assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_embedded_store_starts_stops_cleanly_and_a_second_run_reuses_data_and_keys(tmp_path):
    port = free_port()
    env = {**os.environ, "TOKENSRV_PORT": str(port)}
    env.pop("TOKENSRV_REDIS_URL", None)

    def run_once() -> tuple[str, list[str]]:
        log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115 -- closed after the server stops, below
        process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve", "--embedded-store", ".tokensrv"],
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{port}", process, tmp_path / "serve.log")
            kids = [k["kid"] for k in get_json(f"http://127.0.0.1:{port}/.well-known/jwks.json")["keys"]]
            valkey_pid = child_pids(process.pid)
            assert valkey_pid, "the embedded valkey-server is not running"
            client = run_cli("client", "list", "--json", cwd=tmp_path,
                             env={"TOKENSRV_REDIS_URL": ""})
            assert client.returncode == 0, client.stderr
        finally:
            process.send_signal(signal.SIGINT)  # what Ctrl-C does
            assert process.wait(timeout=20) == 0
            log.close()
        for pid in valkey_pid:
            assert not pid_alive(pid), "the embedded valkey-server outlived the server"
        return client.stdout, kids

    first_clients, first_kids = run_once()
    assert json.loads(first_clients) == []
    created = run_cli_with_embedded(tmp_path, port)
    second_clients, second_kids = run_once()
    assert [c["client_id"] for c in json.loads(second_clients)] == [created]
    assert second_kids == first_kids, (first_kids, second_kids)
    assert (tmp_path / ".tokensrv" / "appendonlydir").is_dir()  # AOF on


def run_cli_with_embedded(tmp_path: Path, port: int) -> str:
    """Start once more, register a client through the CLI (it finds the embedded store), stop."""
    env = {**os.environ, "TOKENSRV_PORT": str(port)}
    env.pop("TOKENSRV_REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve", "--embedded-store", ".tokensrv"],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, tmp_path / "serve.log")
        added = run_cli("client", "add", "--id", "kept", "--grant-type", "client_credentials", cwd=tmp_path,
                        env={"TOKENSRV_REDIS_URL": ""})
        assert added.returncode == 0, added.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    return "kept"


def test_keys_revoke_takes_a_compromised_key_out_of_signing_and_the_jwks_at_once(start_server):
    server = start_server()
    secret = json.loads(server.cli("client", "add", "--id", "svc", "--grant-type",
                                   "client_credentials").stdout)["client_secret"]
    compromised = token_kid(server.url, secret)
    before = [k for k in json.loads(server.cli("keys", "list", "--json").stdout)]
    upcoming = next(k["kid"] for k in before if k["state"] == "next")
    # a kid is base64url: one in 64 starts with "-", which must follow "--" to read as a value
    after = json.loads(server.cli("keys", "revoke", "--json", "--", compromised).stdout)
    states = {k["kid"]: k["state"] for k in after}
    assert compromised not in states
    assert states[upcoming] == "current"  # the already-published next key signs at once
    assert sorted(states.values()) == ["current", "next"]
    # the running server re-reads keys/ within seconds; from then on the key is gone everywhere
    def published() -> set[str]:
        return {k["kid"] for k in get_json(server.url + "/.well-known/jwks.json")["keys"]}
    eventually_sync(lambda: compromised not in published(), "the revoked key to be unpublished", timeout=30,
                    interval=0.1)
    assert token_kid(server.url, secret) == upcoming
    # verifiers learn it from the revocation feed
    from redis import Redis
    feed = Redis.from_url(server.redis_url, decode_responses=True).xrange(keyspace.FEED)
    assert any(fields["k"] == "kid" and fields["v"] == compromised for _, fields in feed)
    unknown = server.cli("keys", "revoke", "no-such-kid", check=False)
    assert unknown.returncode != 0 and len(unknown.stderr.strip().splitlines()) == 1
