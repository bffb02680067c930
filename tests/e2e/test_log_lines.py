"""What a container's log shipper reads: with TOKENSRV_LOG_FORMAT=json (the default) every line a
real `tokensrv serve` writes, stdout and stderr alike, from start to shutdown and when it cannot
start at all, is one JSON object; the human banner is for the text format (what `make run` uses)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.http import add_client, post_form
from tests.helpers.live import wait_ready
from tests.helpers.ports import free_port


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line parsed as the shipper would: a line that is not a JSON object fails the test."""
    entries = []
    for number, line in enumerate(output.splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(entry, dict) and {"ts", "level", "logger", "msg"} <= entry.keys(), line
        entries.append(entry)
    return entries


def exercise(url: str, secret: str) -> None:
    assert post_form(url + "/oauth2/token", {"grant_type": "client_credentials"}, "svc", secret)[0] == 200
    assert post_form(url + "/oauth2/token", {"grant_type": "client_credentials"}, "svc", "wrong")[0] == 401
    for path in ("/nowhere", "/.well-known/jwks.json"):
        with contextlib.suppress(urllib.error.HTTPError):  # a 404 is what /nowhere is for
            urllib.request.urlopen(url + path, timeout=10).close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_line_a_json_server_writes_is_json(start_server, workers):
    server = start_server(TOKENSRV_WORKERS=workers)
    exercise(server.url, add_client(server, "svc", "--grant-type", "client_credentials"))
    server.stop()
    assert server.process.returncode == 0
    entries = json_lines(server.log())
    serving = [e for e in entries if e["msg"] == "serving"]
    assert len(serving) == 1, "the banner is one JSON event"
    assert serving[0]["issuer"] == server.url and serving[0]["workers"] == int(workers)
    assert serving[0]["discovery"] == server.url + "/.well-known/openid-configuration"
    assert any(e["logger"] == "tokensrv.access" and e["status"] == 401 for e in entries)
    assert any("shutting down" in e["msg"] for e in entries)


def test_the_embedded_store_run_writes_json_only(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "TOKENSRV_PORT": str(port), "TOKENSRV_HOST": "127.0.0.1"}
    env.pop("TOKENSRV_REDIS_URL", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve", "--embedded-store", ".tokensrv"],
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log_path)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    entries = json_lines(log_path.read_text())
    assert [e["store"] for e in entries if e["msg"] == "serving"] == [f"embedded Valkey ({tmp_path / '.tokensrv'})"]


def test_a_server_that_cannot_start_says_so_in_json(redis_url, tmp_path: Path):
    env = {**os.environ, "TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(tmp_path / "keys")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        in_use = subprocess.run([sys.executable, "-m", "tokensrv", "serve", "--port", str(port)], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
    bad_setting = subprocess.run([sys.executable, "-m", "tokensrv", "serve"], cwd=tmp_path, capture_output=True,
                                 text=True, timeout=60, env={**env, "TOKENSRV_ACCESS_TOKEN_TTL": "soon"})
    for result, says in ((in_use, f"cannot listen on 127.0.0.1:{port}"), (bad_setting, "TOKENSRV_ACCESS_TOKEN_TTL")):
        assert result.returncode != 0
        entries = json_lines(result.stdout + result.stderr)
        assert entries[-1]["level"] == "error" and says in entries[-1]["msg"], entries


def test_the_text_format_keeps_the_banner_for_people(start_server):
    server = start_server(TOKENSRV_LOG_FORMAT="text")
    server.stop()
    log = server.log()
    assert f"tokensrv is serving {server.url}" in log and "Try it" in log
    assert not any(line.startswith("{") for line in log.splitlines())
