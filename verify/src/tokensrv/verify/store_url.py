"""Store URLs: one Valkey/Redis server, a Cluster or a Sentinel-managed primary, parsed and connected
in one place. tokensrv (TOKENSRV_REDIS_URL, every --redis-url) and the verifier's mirror both use it.

  redis://[user:password@]host[:port][/db]     one server (redis-py parses these: query options too)
  rediss://…                                   the same over TLS
  unix://[user:password@]/path/to/socket[?db=N]
  redis+cluster://[user:password@]host:port[,host:port…]      Cluster: the seed nodes; the client
  rediss+cluster://…                                          learns the others from them
  redis+sentinel://[user:password@]host:port[,host:port…]/service_name[/db]
  rediss+sentinel://…                                         sentinels, and the primary they name

With Sentinel, `user:password@` authenticates to the data nodes (the primary and its replicas): the
sentinels are separate servers, often with no password or another one. Give theirs as
`?sentinel_password=…` (and `&sentinel_username=…`); without it the sentinels are asked without
authentication. TLS (`rediss+…`) applies to the sentinels and the data nodes alike, as do the
`ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` and `ssl_cert_reqs` options.

redis-py does the connecting (`RedisCluster`, `Sentinel.master_for`); this module only reads the URL.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

Topology = Literal["single", "cluster", "sentinel"]
StoreClient = Redis | RedisCluster

SINGLE_SCHEMES = ("redis", "rediss", "unix")
SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://",
           "redis+sentinel://", "rediss+sentinel://")
DEFAULT_PORT = {"cluster": 6379, "sentinel": 26379}
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
SECRET_OPTIONS = ("password", "sentinel_password")  # query options redacted from messages


@dataclass(frozen=True)
class StoreURL:
    topology: Topology
    url: str  # as given: redis-py reads a single-server URL itself
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seed nodes, or the sentinels
    service: str = ""  # the Sentinel service (master) name
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict, repr=False)  # TLS and sentinel_* options


def parse(url: str) -> StoreURL:
    """Read a store URL; ValueError with a message that names the problem, never the password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme in SINGLE_SCHEMES:
        try:
            parse_url(url)  # the parser Redis.from_url uses: a bad port or option fails here, not later
        except ValueError as exc:
            raise ValueError(str(exc).replace("connection URL", "URL")) from None
        return StoreURL("single", url)
    base, _, kind = scheme.partition("+")
    if base not in ("redis", "rediss") or kind not in ("cluster", "sentinel"):
        raise ValueError(f"must start with one of {', '.join(SCHEMES)}")
    topology: Topology = "cluster" if kind == "cluster" else "sentinel"
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo)
    nodes = tuple(_node(item, DEFAULT_PORT[topology]) for item in hosts.split(","))
    service, db = _path(topology, unquote(parts.path))
    return StoreURL(topology, url, nodes, service, db, tls=base == "rediss", username=username,
                    password=password, options=_options(topology, parts.query, base == "rediss"))


def connect(url: str, *, redis_class: type[Redis] = Redis, cluster_class: type[RedisCluster] = RedisCluster,
            **redis_kwargs: Any) -> StoreClient:
    """A client for the store at `url` (not yet connected: redis-py connects on first use).

    `redis_kwargs` (timeouts, decode_responses, client_name, retry…) apply to every data node;
    with Sentinel, the socket_* ones apply to the sentinels too. The class arguments let a caller
    use its own subclasses (tokensrv's instrumented clients).
    """
    store = parse(url)
    if store.topology == "single":
        return redis_class.from_url(url, **redis_kwargs)
    tls: dict[str, Any] = {}
    if store.tls:
        tls = {"ssl": True, **{k: v for k, v in store.options.items() if k in TLS_OPTIONS}}
    if store.topology == "cluster":
        return cluster_class(startup_nodes=[ClusterNode(host, port) for host, port in store.nodes],
                             username=store.username, password=store.password, **tls, **redis_kwargs)
    sentinel_kwargs = {k: v for k, v in redis_kwargs.items() if k.startswith("socket_")}
    sentinel_kwargs.update(tls, username=store.options.get("sentinel_username"),
                           password=store.options.get("sentinel_password"))
    sentinel = Sentinel(list(store.nodes), sentinel_kwargs=sentinel_kwargs)
    client: Redis = sentinel.master_for(
        store.service, redis_class=redis_class, connection_pool_class=_SentinelPool, db=store.db,
        username=store.username, password=store.password, **tls, **redis_kwargs)
    return client


def node_client(node: ClusterNode) -> Redis:
    """A plain client of one Cluster node, with the cluster client's connection settings: for what
    must stay on one node's connection (a subscription; writes followed by WAIT). It owns its
    connections: aclose() closes them."""
    return Redis.from_pool(ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs))


def redact(url: str) -> str:
    """The URL without its passwords (the data nodes' and the sentinels'), for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
    query = "&".join(_redacted_option(part) for part in parts.query.split("&") if part)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _redacted_option(part: str) -> str:
    name = part.partition("=")[0]
    return f"{name}=***" if unquote(name) in SECRET_OPTIONS else part


class _SentinelPool(SentinelConnectionPool):
    """Closing the client closes its connections to the sentinels as well (redis-py leaves them open)."""

    async def aclose(self) -> None:
        await super().aclose()
        for sentinel in self.sentinel_manager.sentinels:
            await sentinel.aclose()


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if colon else None


def _node(item: str, default_port: int) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # an IPv6 address: [::1]:7000
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError("names a node without a host (expected host:port[,host:port…])")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"has a bad port {port_text[:20]!r} for {host[:100]!r}")
    return host, int(port_text)


def _path(topology: Topology, path: str) -> tuple[str, int]:
    """Cluster: no path (or /0: a cluster has only database 0). Sentinel: /service_name[/db]."""
    segments = [s for s in path.split("/") if s]
    if topology == "cluster":
        if segments not in ([], ["0"]):
            raise ValueError("a Cluster URL has no path (a cluster has database 0 only)")
        return "", 0
    if not segments or len(segments) > 2:
        raise ValueError("a Sentinel URL needs the service name as its path: "
                         "redis+sentinel://host:port[,host:port…]/service_name[/db]")
    if len(segments) == 2 and not segments[1].isdigit():
        raise ValueError(f"has a bad database number {segments[1][:20]!r} after the service name")
    return segments[0], int(segments[1]) if len(segments) == 2 else 0


def _options(topology: Topology, query: str, tls: bool) -> dict[str, str]:
    allowed = (TLS_OPTIONS if tls else ()) + (SENTINEL_OPTIONS if topology == "sentinel" else ())
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise ValueError(f"has an unknown option {name[:40]!r} (known here: {known})")
        options[name] = value
    if options.get("ssl_cert_reqs", "required") not in ("none", "optional", "required"):
        raise ValueError("ssl_cert_reqs must be none, optional or required")
    return options
