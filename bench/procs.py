"""Processes the suite starts, each pinned to cores so that "same cores" means something."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.topologies import ClusterTopology, SentinelTopology  # the tests' topologies, and `make cluster`'s
from tokensrv.cli.embedded import EmbeddedValkey

BIN = Path(sys.executable).parent
PEER = Path(__file__).resolve().parent / "peer"  # node-oidc-provider: package.json, its lock, provider.mjs
READY_TIMEOUT = 30.0
CLUSTER_NODE_TIMEOUT_MS = 15000


@dataclass(frozen=True)
class Layout:
    """Which cores run what. Servers get the first cores; the load generators (wrk, the login
    load, this orchestrator) and Valkey get the last one, shared when the machine has only two."""
    cores: tuple[int, ...]

    @classmethod
    def detect(cls) -> Layout:
        return cls(tuple(sorted(os.sched_getaffinity(0))))

    def server(self, workers: int) -> tuple[int, ...]:
        return self.cores[:workers] if len(self.cores) >= workers else self.cores

    @property
    def load(self) -> tuple[int, ...]:
        return self.cores[-1:]

    @property
    def store(self) -> tuple[int, ...]:
        return self.cores[-2:-1] if len(self.cores) > 2 else self.cores[-1:]

    def describe(self, workers: int) -> str:
        return (f"server on core(s) {spell(self.server(workers))}; wrk, login load and this process on "
                f"core {spell(self.load)}; Valkey on core {spell(self.store)}")


def spell(cores: Sequence[int]) -> str:
    return ",".join(map(str, cores))


def pinned(cores: Sequence[int], argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", spell(cores), *argv]


def pin_self(cores: Sequence[int]) -> None:
    os.sched_setaffinity(0, set(cores))


def pin_process(pid: int, cores: Sequence[int]) -> None:
    """Pin a running process, every thread of it, to `cores`."""
    subprocess.run(["taskset", "-a", "-p", "-c", spell(cores), str(pid)], check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}; log:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready in {READY_TIMEOUT:.0f}s; log:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def valkey(workdir: Path, cores: Sequence[int], appendonly: bool = True) -> Iterator[EmbeddedValkey]:
    """The embedded Valkey over TCP loopback (what a fleet uses), AOF as `make run` has it."""
    server = EmbeddedValkey(workdir, port=free_port(), appendonly=appendonly)
    server.start()
    assert server.process is not None
    pin_process(server.process.pid, cores)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def valkey_cluster(workdir: Path, cores: Sequence[int]) -> Iterator[ClusterTopology]:
    """A 3-primary/3-replica Valkey Cluster (examples/topologies.py: AOF with appendfsync everysec on
    every node, as the one Valkey has it), every node pinned to `cores`. Its node timeout is raised
    from the failover tests' 1 s to Valkey's default 15 s: a node busy under load is not failed over."""
    topology = ClusterTopology(workdir)
    try:
        topology.start()
        for node in topology.nodes:
            assert node.process is not None
            pin_process(node.process.pid, cores)
            with node.client() as client:
                client.config_set("cluster-node-timeout", CLUSTER_NODE_TIMEOUT_MS)
        yield topology
    finally:
        topology.stop()


@contextmanager
def valkey_sentinel(workdir: Path, cores: Sequence[int]) -> Iterator[SentinelTopology]:
    """A primary, one replica and three sentinels (examples/topologies.py: AOF with appendfsync
    everysec on both data nodes), every node pinned to `cores`."""
    topology = SentinelTopology(workdir)
    try:
        topology.start()
        for node in topology.nodes:
            assert node.process is not None
            pin_process(node.process.pid, cores)
        yield topology
    finally:
        topology.stop()


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def tokensrv_env(redis_url: str, keys_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSRV_")}
    # everything else as deployed: JSON log lines (one per request), metrics, AOF on the store
    env.update(TOKENSRV_REDIS_URL=redis_url, TOKENSRV_KEYS_DIR=str(keys_dir), **extra)
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    """`tokensrv ARGS --json`: the public administration interface."""
    result = subprocess.run([str(BIN / "tokensrv"), *args, "--json"], env=env, input=stdin,
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"tokensrv {' '.join(args)}: {result.stderr.strip()}")
    return json.loads(result.stdout)


@contextmanager
def tokensrv(env: dict[str, str], workers: int, cores: Sequence[int], workdir: Path) -> Iterator[Server]:
    port = free_port()
    log = workdir / f"tokensrv-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            pinned(cores, [str(BIN / "tokensrv"), "serve", "--host", "127.0.0.1", "--port", str(port),
                           "--workers", str(workers)]),
            env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/readyz", process, log)
        yield Server(url, process, log)
    finally:
        stop(process)


@contextmanager
def static_server(jwks: bytes, discovery: bytes, jwks_headers: dict[str, str], keys_dir: Path, workers: int,
                  cores: Sequence[int], workdir: Path, server: str = "aiohttp") -> Iterator[Server]:
    """The references: a bare aiohttp app serving the same bytes, and signing with the same key;
    same worker model and pinning as tokensrv. `server` other than aiohttp: only the signing
    handler, on another HTTP machinery (bench/static_server.py)."""
    port = free_port()
    (workdir / "jwks.bin").write_bytes(jwks)
    (workdir / "discovery.bin").write_bytes(discovery)
    log = workdir / f"static-{port}.log"
    argv = [sys.executable, "-m", "bench.static_server", "--port", str(port), "--workers", str(workers),
            "--jwks", str(workdir / "jwks.bin"), "--discovery", str(workdir / "discovery.bin"),
            "--cache-control", jwks_headers["Cache-Control"], "--etag", jwks_headers["ETag"],
            "--keys-dir", str(keys_dir), "--server", server]
    with open(log, "wb") as out:
        process = subprocess.Popen(pinned(cores, argv), stdout=out, stderr=subprocess.STDOUT,
                                   cwd=Path(__file__).resolve().parent.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/.well-known/jwks.json", process, log)
        yield Server(url, process, log)
    finally:
        stop(process)


def peer_tools_missing() -> list[str]:
    return [tool for tool in ("node", "npm") if shutil.which(tool) is None]


def install_peer() -> None:
    """node-oidc-provider at the versions bench/peer/package-lock.json pins, installed with `npm ci`
    into bench/peer/node_modules (gitignored), unless that very lock is installed there already."""
    wanted = hashlib.sha256((PEER / "package-lock.json").read_bytes()).hexdigest()
    stamp = PEER / "node_modules" / ".tokensrv-lock-sha256"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=PEER,
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"npm ci in {PEER} failed:\n{result.stderr.strip()[-2000:]}")
    stamp.write_text(wanted)


@contextmanager
def oidc_provider(client: tuple[str, str], scope: str, ttl: int, rsa_bits: int, cores: Sequence[int],
                  workdir: Path) -> Iterator[Server]:
    """node-oidc-provider (bench/peer/provider.mjs) with one client_credentials client, `client`'s
    id and secret, issuing RS256 JWT access tokens for `scope` that live `ttl` seconds, signed by a
    new RSA key of `rsa_bits`; one node process pinned to `cores`, as one tokensrv worker is."""
    port = free_port()
    log = workdir / f"oidc-provider-{port}.log"
    argv = ["node", str(PEER / "provider.mjs"), "--port", str(port), "--client-id", client[0], "--scope", scope,
            "--ttl", str(ttl), "--rsa-bits", str(rsa_bits)]
    # the secret in the environment, not in argv (which ps shows)
    env = {**os.environ, "NODE_ENV": "production", "PEER_CLIENT_SECRET": client[1]}
    with open(log, "wb") as out:
        process = subprocess.Popen(pinned(cores, argv), env=env, cwd=PEER, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/.well-known/jwks.json", process, log)
        yield Server(url, process, log)
    finally:
        stop(process)


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench: {', '.join(missing)} not found (make bench installs wrk with apt-get)")
