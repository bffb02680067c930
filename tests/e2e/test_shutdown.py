"""Graceful shutdown: on SIGTERM the server stops accepting, finishes every request it had
accepted (password-grant logins queued on argon2 here), and exits 0 leaving no process behind
(argon2 workers, their forkserver); with one worker or two."""
from __future__ import annotations

import json
import signal
import socket
import threading
from pathlib import Path

import pytest

from tests.helpers.http import (
    add_client,
    metric_samples,
    metric_total,
    post_form,
)
from tests.helpers.poll import eventually_sync

LOGINS = 6
PASSWORD = "correct horse battery staple"


def descendants(pid: int) -> set[int]:
    """The live processes below `pid`: server workers, the forkserver, argon2 workers."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = {int(c) for c in (task / "children").read_text().split()}
        except OSError:  # the task ended meanwhile
            continue
        for child in children:
            found |= {child} | descendants(child)
    return found


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_accepted_requests_then_exits_0(start_server, workers):
    # one argon2 thread per worker: the logins queue, so SIGTERM arrives while most still wait
    # a drain deadline far beyond the work: on a loaded machine the queued logins take long, and
    # what is tested is that they finish, not how fast
    server = start_server(TOKENSRV_WORKERS=workers, TOKENSRV_ARGON2_THREADS="1",
                          TOKENSRV_LOGIN_MAX_FAILURES="1000", TOKENSRV_SHUTDOWN_TIMEOUT="300")
    secret = add_client(server, "app", "--first-party", "--grant-type", "password", "--scope", "read")
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    answers: list[tuple[int, dict[str, object]] | OSError] = []

    def log_in() -> None:
        try:
            answers.append(post_form(server.url + "/oauth2/token", {
                "grant_type": "password", "username": "alice", "password": PASSWORD}, "app", secret,
                timeout=300))
        except OSError as exc:  # a reset connection lands here and fails the test below
            answers.append(exc)

    threads = [threading.Thread(target=log_in) for _ in range(LOGINS)]
    for thread in threads:
        thread.start()

    def all_accepted_some_in_flight() -> bool:
        # the argon2 queue depth is exact in every worker (set on each change); a login is
        # queued or hashing for nearly all of its time in flight
        samples = metric_samples(server)
        hashing = metric_total(samples, "tokensrv_argon2_queue_depth")
        done = metric_total(samples, "tokensrv_http_requests_total", route="/oauth2/token")
        return hashing + done == LOGINS and hashing >= 1

    eventually_sync(all_accepted_some_in_flight, "every login accepted while some are still in flight", timeout=120,
                    interval=0.02)  # a window: polled often enough not to miss it
    children = descendants(server.process.pid)
    assert len(children) >= int(workers) + 2  # with each server process's forkserver and argon2 worker(s)
    server.process.send_signal(signal.SIGTERM)
    eventually_sync(lambda: refused(server.port), "the port to refuse new connections", timeout=120, interval=0.02)
    for thread in threads:
        thread.join(timeout=300)
    assert server.process.wait(timeout=300) == 0
    assert not [pid for pid in children if alive(pid)]  # no server, forkserver or argon2 process left
    assert len(answers) == LOGINS
    assert all(isinstance(a, tuple) and a[0] == 200 and "access_token" in a[1] for a in answers), answers
    logged = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert sum(e.get("route") == "/oauth2/token" and e.get("status") == 200 for e in logged) == LOGINS
    assert any("shutting down" in e["msg"] for e in logged)
    assert noise(server.log()) == []


def noise(log: str) -> list[str]:
    """What a clean stop never writes: a line that is not a JSON log event (a traceback, the
    resource tracker's "leaked semaphore" warning, "Exception ignored in ..."), or an event that
    carries a traceback."""
    return [line for line in log.splitlines()
            if not line.startswith("{") or "Traceback" in line or "resource_tracker" in line]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_writes_nothing_but_log_events(start_server, workers):
    """Issue 21 item 11: SIGTERM left "leaked semaphore" warnings and tracebacks from the argon2
    pool. Stopped a few times, at rest and just after a login, the server's stderr holds log
    events only."""
    for login in (False, True, False):
        server = start_server(TOKENSRV_WORKERS=workers, TOKENSRV_ARGON2_THREADS="1")
        if login:
            secret = add_client(server, "app", "--first-party", "--grant-type", "password", "--scope", "read")
            server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
            status, _ = post_form(server.url + "/oauth2/token", {
                "grant_type": "password", "username": "alice", "password": PASSWORD}, "app", secret)
            assert status == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=120) == 0
        assert noise(server.log()) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_killed_server_leaves_no_process_behind(start_server, workers):
    """SIGKILL (or the OOM killer) gives the server no chance to stop its argon2 pool: the workers
    and their forkserver were left running for ever, each holding the other's pipes open. Each
    worker now watches its server process and ends with it, and the forkserver follows."""
    server = start_server(TOKENSRV_WORKERS=workers, TOKENSRV_ARGON2_THREADS="1")

    def helpers_started() -> set[int] | None:
        # the pool is warm before serving: a forkserver and an argon2 worker (forked by it, under
        # the same command line) per server process
        children = descendants(server.process.pid)
        forked = [pid for pid in children if b"forkserver" in command_line(pid)]
        return children if len(forked) >= 2 * int(workers) else None

    children = eventually_sync(helpers_started, "every server process's forkserver and argon2 worker", timeout=120)
    server.process.kill()
    server.process.wait(timeout=60)
    eventually_sync(lambda: not [pid for pid in children if alive(pid)],
                    "no server worker, forkserver or argon2 worker left", timeout=60)
