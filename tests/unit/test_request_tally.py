"""The request tally adds to the Prometheus series exactly what one observe() and inc() per
request would have: counts per (route, method, status), and the latency histogram's buckets,
count and sum per route."""
from __future__ import annotations

import pytest
from prometheus_client import Histogram

from tokensrv.observability.metrics import server_metrics
from tokensrv.server.observe import RequestTally

ROUTE = "/test/tally"


def samples(route: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in server_metrics().registry.collect():
        if family.name not in ("tokensrv_http_request_duration_seconds", "tokensrv_http_requests"):
            continue
        for sample in family.samples:
            if sample.labels.get("route") == route:
                key = sample.labels.get("le") or sample.labels.get("status", "")
                found[sample.name, key] = sample.value
    return found


def test_published_figures_are_what_one_observation_per_request_gives():
    durations = [0.0001, 0.0004, 0.0004, 0.003, 0.02, 0.2, 3.0, 99.0]
    bounds = server_metrics().http_latency._upper_bounds
    reference = Histogram("reference_seconds", "the same observations", buckets=bounds[:-1], registry=None)
    for duration in [*durations, 0.001]:  # the route's histogram has every method and status
        reference.observe(duration)
    tally = RequestTally(server_metrics())
    for duration in durations:
        tally.record(ROUTE, "GET", 200, duration)
    tally.record(ROUTE, "POST", 400, 0.001)
    assert samples(ROUTE) == {}  # nothing until published
    tally.publish()
    got = samples(ROUTE)
    expected_buckets = {s.labels["le"]: s.value for s in reference.collect()[0].samples if s.name.endswith("_bucket")}
    assert {le: got["tokensrv_http_request_duration_seconds_bucket", le] for le in expected_buckets} == expected_buckets
    assert got["tokensrv_http_request_duration_seconds_count", ""] == len(durations) + 1
    assert got["tokensrv_http_request_duration_seconds_sum", ""] == pytest.approx(sum(durations) + 0.001)
    assert got["tokensrv_http_requests_total", "200"] == len(durations)
    assert got["tokensrv_http_requests_total", "400"] == 1
    tally.publish()  # published once: a second publish adds nothing
    assert samples(ROUTE) == got


def test_in_flight_is_published_as_it_stands():
    tally = RequestTally(server_metrics())
    tally.in_flight = 3
    tally.publish()
    assert server_metrics().registry.get_sample_value("tokensrv_http_requests_in_flight") == 3
