"""The request tally adds to the Prometheus series exactly what one observe() and inc() per
request would have: counts per (route, method, status), and the latency histogram's buckets,
count and sum per route; and so do the store's round trips, timed the same way."""
from __future__ import annotations

import os
import time

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


def store_samples(command: str) -> dict[tuple[str, str], float]:
    family = next(f for f in server_metrics().registry.collect()
                  if f.name == "tokensrv_store_command_duration_seconds")
    return {(s.name, s.labels.get("le", "")): s.value for s in family.samples if s.labels["command"] == command}


def test_store_round_trips_are_published_as_one_observation_each_gives():
    # each well inside its bucket: timed() measures from `started` to its own call
    durations = [0.0002, 0.0007, 0.0007, 0.004, 0.03, 0.3, 4.0, 50.0]
    metrics = server_metrics()
    reference = Histogram("reference_store_seconds", "the same observations",
                          buckets=metrics.store_latency._upper_bounds[:-1], registry=None)
    for duration in durations:
        reference.observe(duration)
        metrics.timed("test-tally", time.perf_counter() - duration, failed=False)
    assert store_samples("test-tally") == {}  # nothing until published
    metrics.publish()
    got = store_samples("test-tally")
    expected = {s.labels["le"]: s.value for s in reference.collect()[0].samples if s.name.endswith("_bucket")}
    assert {le: got["tokensrv_store_command_duration_seconds_bucket", le] for le in expected} == expected
    assert got["tokensrv_store_command_duration_seconds_count", ""] == len(durations)
    assert got["tokensrv_store_command_duration_seconds_sum", ""] == pytest.approx(sum(durations), abs=0.01)
    metrics.publish()  # published once
    assert store_samples("test-tally") == got


def test_a_failed_round_trip_is_counted_at_once():
    metrics = server_metrics()
    metrics.timed("test-failed", time.perf_counter(), failed=True)
    assert metrics.registry.get_sample_value("tokensrv_store_errors_total", {"command": "test-failed"}) == 1


def test_round_trips_timed_before_a_fork_are_published_once_by_the_parent():
    """`serve --workers N` uses the store before it forks: each worker would otherwise publish the
    parent's pending round trips again."""
    metrics = server_metrics()
    metrics.timed("test-fork", time.perf_counter() - 0.001, failed=False)
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's left to publish
        os._exit(0 if "test-fork" not in metrics._store_pending else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store_samples("test-fork")["tokensrv_store_command_duration_seconds_count", ""] == 1
