"""The local cluster: a store, three tokensrv instances sharing a keys folder and the store, and
the example orders service. What `make cluster`, `make cluster-down` and `make cluster-smoke` run.

    python -m examples.cluster up [--store single|cluster|sentinel] | down | status | smoke [--store S]

The store (STORES, on fixed loopback ports from CLUSTER_VALKEY_PORT, default 6390): `single`, one
Valkey on 6390; `cluster`, a Valkey Cluster of 3 primaries and 3 replicas on 6390-6395 (bus ports
16390-16395); `sentinel`, a primary on 6390, its replica on 6391 and 3 sentinels on 6392-6394
(service `tokensrv`). The nodes are built by examples/topologies.py, as in the tests.

`up` starts a detached supervisor (the store's nodes and the servers are its children and die with
it) and returns once every process answers /readyz. The store and every pid are recorded in
.tokensrv/cluster/pids.json; `down` stops exactly those, whatever the store. `smoke` runs on the
cluster that is up (refusing if --store names another), or starts one (--store, default single)
and stops it after. Logs, each store's data (AOF) and the signing keys are under .tokensrv/cluster/.
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

from examples.topologies import ClusterTopology, SentinelTopology
from tokensrv.cli.embedded import EmbeddedValkey, _die_with_parent

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".tokensrv" / "cluster"
PIDS = STATE / "pids.json"
# its own keys folder: `make run` in the same checkout uses keys/ with another store, and two
# stores' schedules rotating one folder would each create and promote keys in it
KEYS_DIR = STATE / "keys"
VALKEY_PORT = int(os.environ.get("CLUSTER_VALKEY_PORT", "6390"))
STORES = ("single", "cluster", "sentinel")
TOKENSRV_PORTS = (8081, 8082, 8083)
ORDERS_PORT = 8090
ISSUER = f"http://127.0.0.1:{TOKENSRV_PORTS[0]}"  # one issuer for all three: same `iss`, same discovery
READY_TIMEOUT = 60.0
Store = EmbeddedValkey | ClusterTopology | SentinelTopology


class ClusterError(Exception):
    """Why the cluster cannot start or stop: one line."""


def store_ports(store: str) -> list[int]:
    """Every port the store listens on (a Cluster's bus ports too)."""
    if store == "cluster":
        return [*range(VALKEY_PORT, VALKEY_PORT + 6), *range(VALKEY_PORT + 10000, VALKEY_PORT + 10006)]
    return list(range(VALKEY_PORT, VALKEY_PORT + (5 if store == "sentinel" else 1)))


def make_store(store: str) -> Store:
    ports = store_ports(store)
    if store == "cluster":
        return ClusterTopology(STATE / "valkey-cluster", ports=ports[:6], bus_ports=ports[6:])
    if store == "sentinel":
        return SentinelTopology(STATE / "valkey-sentinel", ports=ports)
    return EmbeddedValkey(STATE / "valkey", port=VALKEY_PORT)  # AOF on: `down` then `up` keeps the data


def store_url(store: str) -> str:
    return make_store(store).url


def tokensrv_env(store: str, port: int | None = None) -> dict[str, str]:
    """The cluster's settings, for its servers and for CLI commands against it. The JWKS max-age is
    short so a forced rotation (`tokensrv keys rotate`) completes within seconds."""
    env = {**os.environ, "TOKENSRV_ISSUER": ISSUER, "TOKENSRV_REDIS_URL": store_url(store),
           "TOKENSRV_KEYS_DIR": str(KEYS_DIR), "TOKENSRV_HOST": "127.0.0.1",
           "TOKENSRV_JWKS_MAX_AGE": "2", "TOKENSRV_KEY_CHECK_INTERVAL": "0.5", "TOKENSRV_LOG_FORMAT": "text"}
    if port is not None:
        env["TOKENSRV_PORT"] = str(port)
    return env


# ---- the supervisor (a detached process: `python -m examples.cluster supervise STORE`) ----

def spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(STATE / f"{name}.log", "ab") as log:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # preexec_fn: no threads here


class Stopped(Exception):
    """SIGTERM or SIGINT while the store starts."""


def supervise(store: str) -> int:
    stopping, starting = False, True

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if starting:  # the store's waits poll for up to a minute: give up on them now
            raise Stopped

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    valkey = make_store(store)
    children: dict[str, subprocess.Popen[bytes]] = {}
    pids = {"supervisor": os.getpid()}
    record(store, pids, children)
    try:
        try:
            valkey.start()  # in this, the main thread: the nodes die with this process (PR_SET_PDEATHSIG)
        finally:
            starting = False
            pids.update(store_pids(valkey))
            record(store, pids, children)
        for port in TOKENSRV_PORTS:  # one at a time: the first creates the keys, the others load them
            children[f"tokensrv-{port}"] = spawn(f"tokensrv-{port}", [sys.executable, "-m", "tokensrv", "serve"],
                                                 tokensrv_env(store, port))
            record(store, pids, children)
            wait_ready(f"http://127.0.0.1:{port}", lambda: stopping)
        children["orders"] = spawn("orders", [
            sys.executable, "-m", "examples.orders", "--issuer", ISSUER, "--port", str(ORDERS_PORT),
            "--redis-url", store_url(store)], {**os.environ, "PYTHONPATH": str(ROOT)})
        record(store, pids, children)
        while not stopping:
            exited = [name for name, p in children.items() if p.poll() is not None]
            if exited:
                print(f"cluster: {', '.join(exited)} exited; stopping the cluster", flush=True)
                break
            time.sleep(0.5)
    except Stopped:
        pass
    except (ClusterError, TimeoutError, RuntimeError, OSError) as exc:
        print(f"cluster: error: {exc}", flush=True)  # the last line of supervisor.log: `up` shows it
        return 1
    finally:
        for name in sorted(children, key=lambda n: n != "orders"):  # the service first, the store last
            terminate(children[name])
        valkey.stop()
        PIDS.unlink(missing_ok=True)
    return 0


def store_pids(valkey: Store) -> dict[str, int]:
    if isinstance(valkey, EmbeddedValkey):
        return {"valkey": valkey.process.pid} if valkey.process else {}
    return {node.name: node.process.pid for node in valkey.nodes if node.process}


def record(store: str, pids: dict[str, int], children: dict[str, subprocess.Popen[bytes]]) -> None:
    pids.update({name: p.pid for name, p in children.items()})
    temp = PIDS.with_suffix(".tmp")
    temp.write_text(json.dumps({"store": store, "pids": pids}, indent=1))
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


def recorded() -> tuple[str, dict[str, int]]:
    """The store and the pids of what `up` started ("single" and {} when nothing is recorded)."""
    try:
        state = json.loads(PIDS.read_text())
        return str(state["store"]), {name: int(pid) for name, pid in state["pids"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "single", {}


def ours(pid: int) -> bool:
    """Whether `pid` is still a process we started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return any(marker in cmdline for marker in (b"examples.cluster", b"tokensrv", b"examples.orders",
                                                b"valkey-server"))


def running() -> str | None:
    """The store of the cluster that is up (its supervisor alive: starting, ready or not), if one is."""
    store, pids = recorded()
    return store if pids and ours(pids.get("supervisor", 0)) else None


def up(store: str | None = None) -> None:
    current = running()
    if current:
        if store not in (None, current):
            raise ClusterError(f"the cluster is up on STORE={current}: run `make cluster-down` first")
        for url in urls():  # it may still be starting
            wait_ready(url, lambda: running() is None)
        print(f"cluster: already running (STORE={current})")
        return
    store = store or "single"
    if recorded()[1]:
        down(quiet=True)  # leftovers of a cluster whose supervisor died
    busy = [p for p in (*store_ports(store), *TOKENSRV_PORTS, ORDERS_PORT) if port_in_use(p)]
    if busy:
        raise ClusterError(f"port {busy[0]} is in use: stop what listens there first")
    STATE.mkdir(parents=True, exist_ok=True)
    log_path = STATE / "supervisor.log"
    with open(log_path, "ab") as log:
        start = log.tell()
        supervisor = subprocess.Popen([sys.executable, "-m", "examples.cluster", "supervise", store], cwd=ROOT,
                                      env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for url in urls():
            wait_ready(url, lambda: supervisor.poll() is not None)
    except ClusterError as exc:
        terminate(supervisor)  # it stops what it started
        down(quiet=True)
        lines = log_path.read_bytes()[start:].decode(errors="replace").strip().splitlines()
        raise ClusterError(lines[-1].removeprefix("cluster: error: ") if lines else str(exc)) from None
    status()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def down(quiet: bool = False) -> None:
    _store, pids = recorded()
    if not pids:
        if not quiet:
            print("cluster: not running")
        return
    supervisor = pids.pop("supervisor", 0)
    if ours(supervisor):
        os.kill(supervisor, signal.SIGTERM)  # it stops its children, then the store
        wait_gone([supervisor], 40)
    rest = [supervisor, *pids.values()]
    for pid in rest:  # only if the supervisor could not: by recorded pid, never by name
        if ours(pid):
            os.kill(pid, signal.SIGTERM)
    wait_gone(rest, 15)
    for pid in rest:
        if ours(pid):
            os.kill(pid, signal.SIGKILL)
    wait_gone(rest, 5)
    PIDS.unlink(missing_ok=True)
    if not quiet:
        print("cluster: stopped")


def wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(ours(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def status() -> None:
    store, pids = recorded()
    if not pids:
        print("cluster: not running")
        return
    print(f"cluster: STORE={store} {store_url(store)}, issuer {ISSUER}, logs in {STATE.relative_to(ROOT)}/")
    for url in urls():
        print(f"  {url}  {'ready' if ready(url) else 'NOT READY'}")


USAGE = "usage: python -m examples.cluster up|smoke [--store single|cluster|sentinel] | down | status"


def main(argv: list[str]) -> int:
    command, *rest = argv or ["status"]
    store: str | None = None
    try:
        if command == "supervise" and len(rest) == 1 and rest[0] in STORES:
            return supervise(rest[0])
        if rest[:1] == ["--store"] and len(rest) == 2 and command in ("up", "smoke"):
            store = rest[1]
            if store not in STORES:
                raise ClusterError(f"STORE must be one of {', '.join(STORES)}, not {store!r}")
        elif rest or command not in ("up", "down", "status", "smoke"):
            print(USAGE, file=sys.stderr)
            return 2
        if command == "smoke":
            from examples.smoke import smoke
            return smoke(store)
        if command == "up":
            up(store)
        else:
            {"down": down, "status": status}[command]()
        return 0
    except ClusterError as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
