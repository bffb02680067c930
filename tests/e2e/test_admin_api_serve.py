"""The admin API as an operator runs it: `tokensrv serve --admin-port`, a real process and store.
The admin listener answers; the public listener serves none of /admin; without --admin-port the
server listens on its public port alone; a busy admin port is one clear line; with workers, the
admin port is served too; the admin listener closes with the server."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers.live import LiveServer, wait_ready
from tests.helpers.ports import free_port
from tests.helpers.processes import child_pids, run_cli


def call(url: str, bearer: str | None = None, data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def admin_token(server: LiveServer) -> str:
    secret = json.loads(server.cli("client", "add", "--id", "ops", "--grant-type", "client_credentials",
                                   "--admin", "--json").stdout)["client_secret"]
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "tokensrv:admin",
                                   "client_id": "ops", "client_secret": secret}).encode()
    status, body = call(server.url + "/oauth2/token", data=form)
    assert status == 200, body
    return str(body["access_token"])


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (from /proc: its socket inodes in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def serve(redis_url: str, workdir: Path, *args: str, **env: str) -> LiveServer:
    port = free_port()
    environ = {**os.environ, "TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(workdir / "keys"),
               "TOKENSRV_PORT": str(port), "TOKENSRV_HOST": "127.0.0.1", **env}
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve", *args], env=environ, cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", port, workdir / "keys", redis_url, environ, process, log_path)
    wait_ready(server.url, process, log_path)
    return server


def test_the_admin_listener_answers_and_the_public_one_serves_no_admin_path(redis, redis_url, tmp_path):
    admin_port = free_port()
    server = serve(redis_url, tmp_path, "--admin-port", str(admin_port))
    try:
        admin = f"http://127.0.0.1:{admin_port}"
        bearer = admin_token(server)
        assert call(admin + "/admin/")[1]["token_endpoint"] == server.url + "/oauth2/token"
        status, clients = call(admin + "/admin/clients", bearer)
        assert status == 200 and [c["client_id"] for c in clients] == ["ops"] and clients[0]["admin"] is True
        assert call(server.url + "/admin/clients", bearer) == (404, {"error": "not_found",
                                                                     "error_description": "no such resource"})
        assert call(server.url + "/admin/")[0] == 404
        assert call(admin + "/.well-known/openid-configuration", bearer)[0] == 404
        assert call(admin + "/.well-known/openid-configuration")[0] == 401  # nothing told before authentication
        assert listening_ports(server.process.pid) == {server.port, admin_port}
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    with socket.socket() as probe:  # the admin listener went with the server
        assert probe.connect_ex(("127.0.0.1", admin_port)) != 0
    assert "Traceback" not in server.log()


def test_without_an_admin_port_only_the_public_port_listens(redis, redis_url, tmp_path):
    server = serve(redis_url, tmp_path)
    try:
        assert listening_ports(server.process.pid) == {server.port}
    finally:
        server.stop()


def test_a_busy_admin_port_is_one_clear_line(redis, redis_url, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for workers in ("1", "2"):
            result = run_cli("serve", "--port", str(free_port()), "--admin-port", str(port),
                             env={"TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_LOG_FORMAT": "text",
                                  "TOKENSRV_KEYS_DIR": str(tmp_path / "keys"), "TOKENSRV_WORKERS": workers},
                             cwd=tmp_path)
            assert result.returncode == 1, result.stderr
            assert result.stderr.strip().splitlines()[-1] == (
                f"tokensrv: error: cannot listen on 127.0.0.1:{port} for the admin API: the address is already "
                "in use (set TOKENSRV_ADMIN_PORT or --admin-port)"), workers
            assert "Traceback" not in result.stderr


def test_every_worker_serves_the_admin_port(redis, redis_url, tmp_path):
    admin_port = free_port()
    server = serve(redis_url, tmp_path, TOKENSRV_WORKERS="2", TOKENSRV_ADMIN_PORT=str(admin_port))
    try:
        bearer = admin_token(server)
        workers = child_pids(server.process.pid)
        assert all(admin_port in listening_ports(pid) for pid in workers if server.port in listening_ports(pid))
        assert admin_port not in listening_ports(server.process.pid)  # the supervisor closed its copies
        for _ in range(10):  # whichever worker takes it
            assert call(f"http://127.0.0.1:{admin_port}/admin/keys", bearer)[0] == 200
    finally:
        server.stop()
