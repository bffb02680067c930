"""Prometheus metrics of a verifier. Pass each verifier its own registry when a process (or a test
session) holds several; the default is prometheus-client's global registry."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

RESULTS = ("valid", "invalid", "expired", "revoked", "forbidden", "unavailable")


class VerifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str, *labels: str) -> Counter:
            return Counter("tokensrv_verifier_" + name, text, labels, registry=registry)

        def gauge(name: str, text: str) -> Gauge:
            return Gauge("tokensrv_verifier_" + name, text, registry=registry)

        verifications = counter("verifications", "tokens verified, by result", "result")
        self.verifications = {result: verifications.labels(result) for result in RESULTS}
        self.issuer_requests = counter("issuer_requests", "HTTP requests made to the issuer", "kind")
        self.jwks_fetches = counter("jwks_fetches", "JWKS fetches, by outcome", "result")
        self.jwks_keys = gauge("jwks_keys", "usable keys in the JWKS cache")
        self.mirror_connected = gauge("mirror_connected", "1 while the revocation mirror follows the feed")
        self.mirror_lag = gauge("mirror_lag_seconds",
                                "seconds between a revocation entering the feed and the mirror applying it")
        self.mirror_events = counter("mirror_events", "revocation feed entries applied, by kind", "kind")
        self.mirror_resyncs = counter("mirror_resyncs", "full loads of the deny-list")
        self.mirror_entries = gauge("mirror_entries", "revocations held by the mirror")
