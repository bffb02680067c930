"""The server's connection to its store: any store URL (tokensrv/verify/store_url.py), instrumented
(tokensrv/observability/metrics.py), with the timeouts that make an unreachable store fail requests closed."""
from __future__ import annotations

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tokensrv.observability.metrics import InstrumentedRedis, InstrumentedRedisCluster
from tokensrv.verify import store_url

STORE_TIMEOUT = 3.0  # seconds: a store call that takes longer fails the request (503)


def open_redis(url: str) -> store_url.StoreClient:
    """The store at `url`: one server, a Cluster or Sentinel's primary, instrumented.

    Never retried by redis-py (which by default sends a command up to three more times after a
    timeout or a lost connection): a command whose answer was lost may have run, and run again
    it is another command. A refresh rotation that ran would see its own token as reused and
    revoke the family; a code redemption, its code as replayed. The request fails closed (503)
    instead, and the next one reconnects (on Cluster, after looking up the slots again).
    """
    return store_url.connect(url, redis_class=InstrumentedRedis, cluster_class=InstrumentedRedisCluster,
                             decode_responses=True, socket_connect_timeout=STORE_TIMEOUT,
                             socket_timeout=STORE_TIMEOUT, health_check_interval=10,
                             retry=NO_RETRY)


NO_RETRY = Retry(NoBackoff(), 0)
