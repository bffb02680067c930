"""`tokensrv serve --workers N` (TOKENSRV_WORKERS): N forked processes on one SO_REUSEPORT port,
supervised by a parent that forwards SIGTERM/SIGINT and owns the embedded store."""
from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers.live import LiveServer, wait_ready
from tests.helpers.poll import eventually_sync
from tests.helpers.ports import free_port
from tests.helpers.processes import child_pids, pid_alive, run_cli


def workers_of(server: LiveServer) -> list[int]:
    return child_pids(server.process.pid)


def established_on(pid: int, port: int) -> int:
    """How many established TCP connections to `port` the process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            count += local_port == port and state == "01" and inode in inodes
    return count


def test_two_workers_share_the_port_and_both_answer(start_server):
    server = start_server(TOKENSRV_WORKERS="2")
    workers = workers_of(server)
    assert len(workers) == 2
    # the kernel spreads connections by their addresses: with 16 of them, both workers get some
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(16)]
    try:
        for connection in connections:
            connection.request("GET", "/.well-known/jwks.json")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["keys"]
        held = [established_on(pid, server.port) for pid in workers]
        assert sum(held) == 16 and all(held), held
    finally:
        for connection in connections:
            connection.close()


def test_sigterm_stops_every_worker_and_the_parent_exits_cleanly(start_server):
    server = start_server(TOKENSRV_WORKERS="2")
    workers = workers_of(server)
    # ready answers from whichever worker accepted first: wait until the other one serves too
    eventually_sync(lambda: server.log().count("worker serving requests") == 2, "both workers serving", timeout=120)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    assert not any(pid_alive(pid) for pid in workers)
    assert server.log().count("shutting down") == 2  # each worker closed its connections itself


def test_a_dead_worker_stops_the_server_with_an_error(start_server):
    server = start_server(TOKENSRV_WORKERS="2")
    first, second = workers_of(server)
    os.kill(first, signal.SIGKILL)
    assert server.process.wait(timeout=20) == 1
    assert not pid_alive(second)
    assert "exited with status -9: stopping the server" in server.log()


def rotation_steps(log: str) -> list[str]:
    return [line.split("key rotation step: ", 1)[1].split('"')[0] for line in log.splitlines()
            if "key rotation step: " in line]


def test_each_scheduled_rotation_step_is_performed_once(start_server):
    """Both workers run the schedule; the Redis lock makes one of them perform each step."""
    server = start_server(TOKENSRV_WORKERS="2", TOKENSRV_JWKS_MAX_AGE="1", TOKENSRV_KEY_ROTATION_PERIOD="3",
                          TOKENSRV_KEY_CHECK_INTERVAL="0.25")
    eventually_sync(lambda: sum(s.startswith("promote") for s in rotation_steps(server.log())) >= 4,  # bootstrap + 3
                    lambda: f"4 promotions (the schedule stalled: {rotation_steps(server.log())})", timeout=60,
                    interval=0.2)
    steps = rotation_steps(server.log())
    promoted = [s.split()[1] for s in steps if s.startswith("promote")]
    assert len(promoted) == len(set(promoted)), steps  # no key promoted twice
    # each promotion is followed by exactly one new next key (the first key is created at start)
    assert steps[0] == "create" and all(
        later == "create" for step, later in itertools.pairwise(steps) if step.startswith("promote")), steps
    assert steps.count("create") in (len(promoted), len(promoted) + 1), steps


def test_port_in_use_is_one_clear_line_with_workers(redis_url, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--workers", "2",
                         env={"TOKENSRV_REDIS_URL": redis_url}, cwd=tmp_path)
    assert result.returncode == 1
    last = json.loads(result.stderr.strip().splitlines()[-1])  # the server's log format: JSON by default
    assert last["level"] == "error" and last["msg"] == (
        f"cannot listen on 127.0.0.1:{port}: the address is already in use (set TOKENSRV_PORT or --port)")


def test_a_second_server_cannot_join_the_workers_port(start_server, redis_url, tmp_path):
    server = start_server(TOKENSRV_WORKERS="2")
    result = run_cli("serve", "--port", str(server.port), "--workers", "2",
                     env={"TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(server.keys_dir)},
                     cwd=tmp_path)
    assert result.returncode == 1 and "already in use" in result.stderr


def test_only_the_parent_owns_the_embedded_store(tmp_path):
    port = free_port()
    env = {**os.environ, "TOKENSRV_PORT": str(port), "TOKENSRV_WORKERS": "2"}
    env.pop("TOKENSRV_REDIS_URL", None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve", "--embedded-store", ".tokensrv"],
                                   cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        children = child_pids(process.pid)
        names = [Path(f"/proc/{pid}/comm").read_text().strip() for pid in children]
        assert len(children) == 3 and names.count("valkey-server") == 1, names  # two workers, one store
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=20) == 0
    assert not any(pid_alive(pid) for pid in children)
