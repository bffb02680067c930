"""Prometheus metrics of verifiers; any number of them may share a registry (by default
prometheus-client's global one). Needs prometheus-client (tokensrv-verify's `metrics` extra; the
server installs it): without it a verifier counts nothing (tokensrv/verify/counters.py).

Each registry gets one set of collectors, on first use, shared by every verifier reporting there.
Counters are labelled `audience`; verifiers of the same audience add up:

    tokensrv_verifier_verifications_total{audience, result}   valid|invalid|expired|revoked|forbidden|unavailable
    tokensrv_verifier_issuer_requests_total{audience, kind}   discovery|jwks: HTTP requests made to the issuer
    tokensrv_verifier_jwks_fetches_total{audience, result}    ok|not_modified|error
    tokensrv_verifier_mirror_events_total{audience, kind}     revocation feed entries applied (jti|sid|sub|family|kid)
    tokensrv_verifier_mirror_resyncs_total{audience}          full loads of the deny-list

The state gauges are read from the live verifiers when scraped, one sample per verifier, labelled
`audience` and `verifier` (a serial, unique in the process); a verifier leaves them when closed or
garbage-collected, and the mirror's only exist for verifiers that follow the revocation feed:

    tokensrv_verifier_jwks_keys{audience, verifier}            usable keys in the JWKS cache
    tokensrv_verifier_mirror_connected{audience, verifier}     1 while the mirror follows the feed
    tokensrv_verifier_mirror_lag_seconds{audience, verifier}   feed entry added -> applied, last batch
    tokensrv_verifier_mirror_entries{audience, verifier}       revocations held by the mirror
"""
from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# the state a verifier reports, apart: a verifier without prometheus-client has it too
from .counters import Observed

PREFIX = "tokensrv_verifier_"
RESULTS = ("valid", "invalid", "expired", "revoked", "forbidden", "unavailable")
STATE_LABELS = ("audience", "verifier")


class StateGauges(Collector):
    """The state gauges of one registry: a sample per live verifier, read when scraped (a scrape
    may run in another thread: prometheus-client's HTTP server)."""

    GAUGES = (("jwks_keys", "usable keys in the JWKS cache"),
              ("mirror_connected", "1 while the revocation mirror follows the feed"),
              ("mirror_lag_seconds", "seconds between a revocation entering the feed and the mirror applying it"),
              ("mirror_entries", "revocations held by the mirror"))

    def __init__(self) -> None:
        self._live: weakref.WeakKeyDictionary[Observed, str] = weakref.WeakKeyDictionary()  # -> serial
        self._lock = threading.Lock()

    def watch(self, verifier: Observed, serial: str) -> None:
        with self._lock:
            self._live[verifier] = serial

    def forget(self, verifier: Observed) -> None:
        with self._lock:
            self._live.pop(verifier, None)

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())  # the names only: lets the registry refuse a clash

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        with self._lock:
            live = list(self._live.items())
        for verifier, serial in live:
            labels = [verifier.audience, serial]
            state = verifier.metrics_state()
            values = (state.jwks_keys, state.mirror_connected, state.mirror_lag_seconds, state.mirror_entries)
            for family, value in zip(families, values, strict=True):
                if value is not None:
                    family.add_metric(labels, float(value))
        return iter(families)

    def _families(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(PREFIX + name, text, labels=STATE_LABELS) for name, text in self.GAUGES]


class SharedCollectors:
    """The collectors of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str, *labels: str) -> Counter:
            return Counter(PREFIX + name, text, ("audience", *labels), registry=registry)

        self.verifications = counter("verifications", "tokens verified, by result", "result")
        self.issuer_requests = counter("issuer_requests", "HTTP requests made to the issuer", "kind")
        self.jwks_fetches = counter("jwks_fetches", "JWKS fetches, by outcome", "result")
        self.mirror_events = counter("mirror_events", "revocation feed entries applied, by kind", "kind")
        self.mirror_resyncs = counter("mirror_resyncs", "full loads of the deny-list")
        self.state = StateGauges()
        registry.register(self.state)


_shared: weakref.WeakKeyDictionary[CollectorRegistry, SharedCollectors] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()  # verifiers may be built in several threads (one loop each)
_serials = itertools.count(1)


def shared_collectors(registry: CollectorRegistry) -> SharedCollectors:
    with _shared_lock:
        collectors = _shared.get(registry)
        if collectors is None:
            collectors = _shared[registry] = SharedCollectors(registry)
        return collectors


class AudienceCounter:
    """A counter with its `audience` label filled in: `.labels(kind)` as if it had only the other."""

    def __init__(self, counter: Counter, audience: str) -> None:
        self._counter, self._audience = counter, audience

    def labels(self, value: str) -> Counter:
        return self._counter.labels(self._audience, value)


class VerifierMetrics:
    """One verifier's handles on its registry's shared collectors. The verification counters are
    bound once here, so counting a verification costs one dict lookup, as before."""

    def __init__(self, registry: CollectorRegistry, audience: str) -> None:
        self.registry = registry
        self.serial = str(next(_serials))  # the `verifier` label of its state gauges
        self._shared = shared = shared_collectors(registry)
        self.verifications = {result: shared.verifications.labels(audience, result) for result in RESULTS}
        self.issuer_requests = AudienceCounter(shared.issuer_requests, audience)
        self.jwks_fetches = AudienceCounter(shared.jwks_fetches, audience)
        self.mirror_events = AudienceCounter(shared.mirror_events, audience)
        self.mirror_resyncs = shared.mirror_resyncs.labels(audience)

    def watch(self, verifier: Observed) -> None:
        """Report `verifier`'s state gauges (until forget(), or until it is garbage-collected)."""
        self._shared.state.watch(verifier, self.serial)

    def forget(self, verifier: Observed) -> None:
        self._shared.state.forget(verifier)
