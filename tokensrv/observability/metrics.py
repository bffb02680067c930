"""Prometheus metrics: what an operator watches. Multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is
set (`tokensrv serve --workers N` sets it), in which case every worker writes its own files and
/metrics on any worker adds them up.

Importing this module creates no metric: they live on a registry of their own, made when the
server first needs them (`server_metrics()`, which the app holds), and their storage (memory, or
files shared between workers) is chosen then, so no import order matters.
"""
from __future__ import annotations

import bisect
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import RedisError

from tokensrv.verify import __version__ as verify_version
from tokensrv.version import __version__

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5)

class ServerMetrics:
    """The server's metric objects, on their own registry, and their labelled series (labels() is
    a locked look-up per call, so each series is looked up once; all are bounded lists)."""

    def __init__(self) -> None:
        # prometheus-client picks files or memory from PROMETHEUS_MULTIPROC_DIR when it is first
        # imported; picking again here makes the choice when the metrics are made, whatever
        # imported prometheus-client before the CLI set the folder
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter("tokensrv_http_requests_total", "HTTP requests by route and status",
                                     ["route", "method", "status"], registry=registry)
        self.http_latency = Histogram("tokensrv_http_request_duration_seconds", "HTTP request latency by route",
                                      ["route"], buckets=_FAST, registry=registry)
        self.tokens_issued = Counter("tokensrv_tokens_issued_total", "token responses by grant and client type",
                                     ["grant_type", "client_type"], registry=registry)
        self.refresh_reuse = Counter("tokensrv_refresh_reuse_detected_total",
                                     "rotated refresh tokens presented again (their families were revoked)",
                                     registry=registry)
        self.revocations = Counter("tokensrv_revocations_total", "deny-list entries written, by kind", ["kind"],
                                   registry=registry)
        self.login_failures = Counter("tokensrv_login_failures_total", "failed username/password checks",
                                      registry=registry)
        self.second_factor = Counter("tokensrv_second_factor_total", "second-factor (TOTP, passkey) checks at sign-in "
                                     "and on the account page, by outcome", ["outcome"], registry=registry)
        # counted from the 429 answers by route: a limiter anywhere (login page, password grant, token
        # endpoint) is seen without each of them having to remember to count
        self.rate_limited = Counter("tokensrv_rate_limited_total",
                                    "requests refused by a rate limit (429), by route", ["route"], registry=registry)
        self.argon2_queue = Gauge("tokensrv_argon2_queue_depth", "password hashes queued or running",
                                  multiprocess_mode="livesum", registry=registry)
        self.in_flight = Gauge("tokensrv_http_requests_in_flight", "HTTP requests being handled (each worker's "
                               "count is at most a second old, the scraped worker's exact)",
                               multiprocess_mode="livesum", registry=registry)
        self.store_latency = Histogram("tokensrv_store_command_duration_seconds",
                                       "round trips to Valkey (a pipeline or script counts once)", ["command"],
                                       buckets=_FAST, registry=registry)
        self.backchannel_logouts = Counter(
            "tokensrv_backchannel_logout_total", "back-channel logout tokens, by outcome: delivered, refused (the "
            "client answered 4xx), retried, dropped (attempts used up), queue_full (not queued)", ["outcome"],
            registry=registry)
        self.store_errors = Counter("tokensrv_store_errors_total", "failed round trips to Valkey", ["command"],
                                    registry=registry)
        self._store_latency_of: dict[str, Any] = {}
        self._issued: dict[tuple[str, bool], Any] = {}
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # command -> its round trips since the last publish(), as Observed.add counts them
        self._store_pending: dict[str, Observed] = {}

    def timed(self, command: str, started: float, failed: bool) -> None:
        """One round trip to the store. Its latency waits in plain numbers for publish() (a
        histogram's observe() takes a lock twice, and with workers writes a memory-mapped file);
        a failure is counted at once."""
        pending = self._store_pending.get(command)
        if pending is None:  # bounded: the commands this code sends
            pending = self._store_pending[command] = Observed(self.store_latency._upper_bounds)
        pending.add(time.perf_counter() - started)
        if failed:
            self.store_errors.labels(command).inc()

    def publish(self) -> None:
        """Adds the round trips timed since the last call to the store latency histogram. The
        server calls it every second and before each scrape (server/observe.RequestTally)."""
        pending, self._store_pending = self._store_pending, {}
        for command, observed in pending.items():
            latency = self._store_latency_of.get(command)
            if latency is None:
                latency = self._store_latency_of[command] = self.store_latency.labels(command)
            observed.publish_to(latency)

    def issued(self, grant_type: str, public: bool) -> Any:
        counter = self._issued.get((grant_type, public))
        if counter is None:  # bounded: the grant types a client can name are checked before this
            counter = self._issued[grant_type, public] = self.tokens_issued.labels(
                grant_type, "public" if public else "confidential")
        return counter

    def http(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """The (requests counter, latency histogram) series of a route, method and status."""
        found = self._http.get((route, method, status))
        if found is None:  # bounded: routes, methods and statuses are each a short list
            found = self._http[route, method, status] = (self.http_requests.labels(route, method, str(status)),
                                                         self.http_latency.labels(route))
        return found


class Observed:
    """Observations of one histogram series kept in plain numbers until publish_to() adds them:
    what as many calls of its observe() would have added (prometheus-client has no call for
    several observations at once; tests/unit/test_request_tally.py holds it)."""

    def __init__(self, bounds: Sequence[float]) -> None:  # the histogram's buckets, +Inf last
        self.bounds = bounds
        self.count, self.seconds, self.buckets = 0, 0.0, [0] * len(bounds)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        self.buckets[bisect.bisect_left(self.bounds, seconds)] += 1  # le: the first bound >= it

    def publish_to(self, histogram: Any) -> None:
        """`histogram`: a labelled series of the histogram whose bounds these are."""
        histogram._sum.inc(self.seconds)
        for bucket, n in zip(histogram._buckets, self.buckets, strict=True):
            if n:
                bucket.inc(n)


_server: ServerMetrics | None = None


def server_metrics() -> ServerMetrics:
    """This process's server metrics, made on first use: when the app is built or a store first
    answers, never at import. One per process, as its counters are the process's."""
    global _server
    if _server is None:
        _server = ServerMetrics()
    return _server


def _publish_before_fork() -> None:
    """Round trips timed by a process that forks (`serve --workers N` checks the store before it
    starts its workers) are published there, not copied into every child to be published again."""
    if _server is not None:
        _server.publish()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_publish_before_fork)


def _timed(command: str, started: float, failed: bool) -> None:
    server_metrics().timed(command, started, failed)


class InstrumentedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        started, failed = time.perf_counter(), False
        try:
            return await super().execute(raise_on_error)
        except (RedisError, OSError):
            failed = True
            raise
        finally:
            _timed("pipeline", started, failed)


class InstrumentedRedis(Redis):
    """redis.asyncio.Redis that times every round trip and counts failures."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started, failed = time.perf_counter(), False
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        except (RedisError, OSError):
            failed = True
            raise
        finally:
            _timed(str(args[0]).lower() if args else "?", started, failed)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return InstrumentedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class InstrumentedClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        started, failed = time.perf_counter(), False
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except (RedisError, OSError):
            failed = True
            raise
        finally:
            _timed("pipeline", started, failed)


class InstrumentedRedisCluster(RedisCluster):
    """redis.asyncio.RedisCluster, timed and counted like InstrumentedRedis (a command that is
    redirected to another node, MOVED or ASK, counts once, with its redirections)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started, failed = time.perf_counter(), False
        try:
            return await super().execute_command(*args, **options)
        except (RedisError, OSError):
            failed = True
            raise
        finally:
            _timed(str(args[0]).lower() if args else "?", started, failed)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        super().pipeline(transaction, shard_hint)  # its checks of the arguments
        return InstrumentedClusterPipeline(self, transaction)  # type: ignore[abstract]  # redis-py makes one just so


class KeyCollector(Collector):
    """Key ids and states, and seconds until the next rotation step, computed at scrape time from the
    keys/ folder every worker shares (so the answer is the same whichever worker is scraped)."""

    def __init__(self, describe: Callable[[], tuple[list[tuple[str, str]], float | None]]) -> None:
        self.describe_keys = describe

    def collect(self) -> Iterable[Metric]:
        keys, next_step_in = self.describe_keys()
        info = GaugeMetricFamily("tokensrv_signing_key", "published signing keys (1) by kid and state",
                                 labels=["kid", "state"])
        for kid, state in keys:
            info.add_metric([kid, state], 1)
        yield info
        if next_step_in is not None:
            yield GaugeMetricFamily("tokensrv_key_rotation_next_step_seconds",
                                    "seconds until the rotation schedule's next step", value=next_step_in)


def exposition(server: ServerMetrics, extra: Collector | None = None) -> bytes:
    """The text exposition: this process's metrics (the server's, and prometheus-client's own process
    and runtime ones), or every worker's files in multiprocess mode."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Delegate(REGISTRY))
        registry.register(_Delegate(server.registry))
    registry.register(BuildInfo())  # computed per scrape, so in multiprocess mode as well
    if extra is not None:
        registry.register(extra)
    return generate_latest(registry)


class BuildInfo(Collector):
    """tokensrv_build_info{version, verify_version, python} 1: which release a scraped process runs
    (the server's, the verifier's it imports, and the Python running them)."""

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("tokensrv_build_info", "the running tokensrv: its version, tokensrv-verify's "
                                   "and Python's, in the labels", labels=["version", "verify_version", "python"])
        family.add_metric([__version__, verify_version, platform.python_version()], 1)
        yield family


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()
