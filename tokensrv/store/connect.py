"""The server's connection to its store: any store URL (tokensrv/verify/store_url.py), instrumented
(tokensrv/metrics.py), with the timeouts that make an unreachable store fail requests closed."""
from __future__ import annotations

from ..metrics import InstrumentedRedis, InstrumentedRedisCluster
from ..verify import store_url

STORE_TIMEOUT = 3.0  # seconds: a store call that takes longer fails the request (503)


def open_redis(url: str) -> store_url.StoreClient:
    """The store at `url`: one server, a Cluster or Sentinel's primary, instrumented."""
    return store_url.connect(url, redis_class=InstrumentedRedis, cluster_class=InstrumentedRedisCluster,
                             decode_responses=True, socket_connect_timeout=STORE_TIMEOUT,
                             socket_timeout=STORE_TIMEOUT, health_check_interval=10)
