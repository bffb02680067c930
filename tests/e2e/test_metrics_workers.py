"""/metrics with --workers 2: every worker writes its own files, any worker's scrape adds them up."""
from __future__ import annotations

import json
import time

import pytest

from tests.e2e.http_helpers import add_client, metric_samples, metric_total, post_form
from tokensrv.server.observe import RequestTally

pytestmark = pytest.mark.e2e
N = 24


def test_a_scrape_counts_the_requests_of_both_workers(start_server):
    server = start_server(TOKENSRV_WORKERS="2")
    secret = add_client(server, "svc", "--grant-type", "client_credentials")
    for _ in range(N):  # one connection each: the kernel spreads them over both workers
        status, body = post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"},
                                 "svc", secret)
        assert status == 200, body
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    served_by = {e["pid"] for e in lines if e.get("route") == "/oauth2/token" and e.get("status") == 200}
    assert len(served_by) == 2  # both workers answered some: the totals below add two processes
    # The tokens-issued counter is exact at once; the request counts of the worker that does not
    # answer a scrape reach it within its tally's PUBLISH_INTERVAL (observe.RequestTally)
    deadline = time.monotonic() + 10 * RequestTally.PUBLISH_INTERVAL
    while True:
        samples = metric_samples(server)
        assert metric_total(samples, "tokensrv_tokens_issued_total", grant_type="client_credentials") == N
        requests = metric_total(samples, "tokensrv_http_requests_total", route="/oauth2/token", status="200")
        assert requests <= N
        if requests == N:
            break
        assert time.monotonic() < deadline, f"{requests} of {N} requests counted"
        time.sleep(0.05)  # polling the scrape until the other worker's tally is published
    for _ in range(4):  # whichever worker answers the scrape: both published everything
        samples = metric_samples(server)
        assert metric_total(samples, "tokensrv_http_requests_total", route="/oauth2/token", status="200") == N


def test_the_metrics_folder_made_for_the_workers_is_removed_at_exit(start_server, tmp_path):
    server = start_server(TOKENSRV_WORKERS="2", TMPDIR=str(tmp_path))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tokensrv-metrics-")]
    server.stop()
    assert server.process.returncode == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("tokensrv-metrics-")]
