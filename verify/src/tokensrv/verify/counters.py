"""What a verifier counts through, with or without prometheus-client.

prometheus-client is optional (the `metrics` extra of tokensrv-verify): with it, a verifier reports
to a registry (tokensrv/verify/metrics.py, which needs it); without it, to `Unmeasured`, which counts
nothing, so a bare install verifies as well and pays nothing. This module imports neither (the
verifier chooses: verifier.verifier_metrics).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VerifierState:
    """What a verifier's gauges show; the mirror's fields are None without a mirror."""
    jwks_keys: int
    mirror_connected: bool | None = None
    mirror_lag_seconds: float | None = None
    mirror_entries: int | None = None


class Observed(Protocol):
    """A verifier, as its state gauges read it at scrape time."""
    @property
    def audience(self) -> str: ...
    def metrics_state(self) -> VerifierState: ...


class Count(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Labelled(Protocol):
    """A counter with one label left to fill in."""
    def labels(self, value: str) -> Count: ...


class Metrics(Protocol):
    """A verifier's handles on its counters (metrics.VerifierMetrics, or Unmeasured)."""
    @property
    def verifications(self) -> Mapping[str, Count]: ...
    @property
    def issuer_requests(self) -> Labelled: ...
    @property
    def jwks_fetches(self) -> Labelled: ...
    @property
    def mirror_events(self) -> Labelled: ...
    @property
    def mirror_resyncs(self) -> Count: ...
    def watch(self, verifier: Observed) -> None: ...
    def forget(self, verifier: Observed) -> None: ...


class Uncounted:
    """A counter, labelled or not, that counts nothing."""

    def labels(self, value: str) -> Uncounted:
        return self

    def inc(self, amount: float = 1) -> None:
        pass


class Unmeasured:
    """The metrics of a verifier in a process without prometheus-client: none."""

    def __init__(self) -> None:
        self.verifications: defaultdict[str, Uncounted] = defaultdict(Uncounted)  # any result
        self.issuer_requests = self.jwks_fetches = self.mirror_events = self.mirror_resyncs = Uncounted()

    def watch(self, verifier: Observed) -> None:
        pass

    def forget(self, verifier: Observed) -> None:
        pass

