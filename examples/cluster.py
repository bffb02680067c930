"""The local cluster: one Valkey, three tokensrv instances sharing keys/ and the store, and the
example orders service. What `make cluster`, `make cluster-down` and `make cluster-smoke` run.

    python -m examples.cluster up | down | status | smoke

`up` starts a detached supervisor (its children die with it) and returns once every process
answers /readyz. Every pid is recorded in .tokensrv/cluster/pids.json; `down` stops exactly
those. Logs and Valkey's data (AOF) are under .tokensrv/cluster/.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tokensrv.embedded import EmbeddedValkey, _die_with_parent

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".tokensrv" / "cluster"
PIDS = STATE / "pids.json"
VALKEY_PORT = int(os.environ.get("CLUSTER_VALKEY_PORT", "6390"))
TOKENSRV_PORTS = (8081, 8082, 8083)
ORDERS_PORT = 8090
ISSUER = f"http://127.0.0.1:{TOKENSRV_PORTS[0]}"  # one issuer for all three: same `iss`, same discovery
REDIS_URL = f"redis://127.0.0.1:{VALKEY_PORT}/0"
READY_TIMEOUT = 60.0


class ClusterError(Exception):
    """Why the cluster cannot start or stop: one line."""


def tokensrv_env(port: int | None = None) -> dict[str, str]:
    """The cluster's settings, for its servers and for CLI commands against it. The JWKS max-age is
    short so a forced rotation (`tokensrv keys rotate`) completes within seconds."""
    env = {**os.environ, "TOKENSRV_ISSUER": ISSUER, "TOKENSRV_REDIS_URL": REDIS_URL,
           "TOKENSRV_KEYS_DIR": str(ROOT / "keys"), "TOKENSRV_HOST": "127.0.0.1",
           "TOKENSRV_JWKS_MAX_AGE": "2", "TOKENSRV_KEY_CHECK_INTERVAL": "0.5", "TOKENSRV_LOG_FORMAT": "text"}
    if port is not None:
        env["TOKENSRV_PORT"] = str(port)
    return env


# ---- the supervisor (a detached process: `python -m examples.cluster supervise`) ----

def spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(STATE / f"{name}.log", "ab") as log:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)


def supervise() -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    valkey = EmbeddedValkey(STATE / "valkey", port=VALKEY_PORT)  # AOF on: `down` then `up` keeps the data
    valkey.start()
    children: dict[str, subprocess.Popen[bytes]] = {}
    pids = {"supervisor": os.getpid(), "valkey": valkey.process.pid if valkey.process else 0}
    try:
        for port in TOKENSRV_PORTS:  # one at a time: the first creates the keys, the others load them
            children[f"tokensrv-{port}"] = spawn(f"tokensrv-{port}", [sys.executable, "-m", "tokensrv", "serve"],
                                                 tokensrv_env(port))
            record(pids, children)
            wait_ready(f"http://127.0.0.1:{port}", lambda: stopping)
        children["orders"] = spawn("orders", [
            sys.executable, "-m", "examples.orders", "--issuer", ISSUER, "--port", str(ORDERS_PORT),
            "--redis-url", REDIS_URL], {**os.environ, "PYTHONPATH": str(ROOT)})
        record(pids, children)
        while not stopping:
            exited = [name for name, p in children.items() if p.poll() is not None]
            if exited:
                print(f"cluster: {', '.join(exited)} exited; stopping the cluster", flush=True)
                break
            time.sleep(0.5)
    finally:
        for name in sorted(children, key=lambda n: n != "orders"):  # the service first, the store last
            terminate(children[name])
        valkey.stop()
        PIDS.unlink(missing_ok=True)
    return 0


def record(pids: dict[str, int], children: dict[str, subprocess.Popen[bytes]]) -> None:
    pids.update({name: p.pid for name, p in children.items()})
    temp = PIDS.with_suffix(".tmp")
    temp.write_text(json.dumps(pids, indent=1))
    temp.replace(PIDS)


def terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- up, down, status ----

def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def wait_ready(url: str, give_up: object = lambda: False) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready(url):
        if time.monotonic() > deadline or give_up():  # type: ignore[operator]
            raise ClusterError(f"{url} is not ready; see the logs in {STATE}")
        time.sleep(0.1)


def urls() -> list[str]:
    return [f"http://127.0.0.1:{p}" for p in (*TOKENSRV_PORTS, ORDERS_PORT)]


def recorded() -> dict[str, int]:
    try:
        return {name: int(pid) for name, pid in json.loads(PIDS.read_text()).items()}
    except (OSError, ValueError):
        return {}


def ours(pid: int) -> bool:
    """Whether `pid` is still a process we started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return any(marker in cmdline for marker in (b"examples.cluster", b"tokensrv", b"examples.orders",
                                                b"valkey-server"))


def running() -> bool:
    pids = recorded()
    return bool(pids) and ours(pids["supervisor"]) and all(ready(u) for u in urls())


def up() -> None:
    if running():
        print("cluster: already running")
        return
    if recorded():
        down()  # leftovers of a cluster that died
    busy = [p for p in (VALKEY_PORT, *TOKENSRV_PORTS, ORDERS_PORT) if port_in_use(p)]
    if busy:
        raise ClusterError(f"port {busy[0]} is in use: stop what listens there first")
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "supervisor.log", "ab") as log:
        supervisor = subprocess.Popen([sys.executable, "-m", "examples.cluster", "supervise"], cwd=ROOT,
                                      env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for url in urls():
            wait_ready(url, lambda: supervisor.poll() is not None)
    except ClusterError:
        down()
        raise
    status()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def down() -> None:
    pids = recorded()
    if not pids:
        print("cluster: not running")
        return
    supervisor = pids.pop("supervisor")
    if ours(supervisor):
        os.kill(supervisor, signal.SIGTERM)  # it stops its children, then the store
        wait_gone([supervisor], 40)
    for pid in pids.values():  # only if the supervisor could not: by recorded pid, never by name
        if ours(pid):
            os.kill(pid, signal.SIGTERM)
    wait_gone([p for p in pids.values()], 15)
    for pid in pids.values():
        if ours(pid):
            os.kill(pid, signal.SIGKILL)
    PIDS.unlink(missing_ok=True)
    print("cluster: stopped")


def wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(ours(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def status() -> None:
    print(f"cluster: Valkey {REDIS_URL}, issuer {ISSUER}, logs in {STATE.relative_to(ROOT)}/")
    for url in urls():
        print(f"  {url}  {'ready' if ready(url) else 'NOT READY'}")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    try:
        if command == "smoke":
            from examples.smoke import smoke
            return smoke()
        actions = {"up": up, "down": down, "status": status, "supervise": supervise}
        if command not in actions:
            print("usage: python -m examples.cluster up|down|status|smoke", file=sys.stderr)
            return 2
        return actions[command]() or 0
    except ClusterError as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
