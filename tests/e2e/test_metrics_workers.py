"""/metrics with --workers 2: every worker writes its own files, any worker's scrape adds them up."""
from __future__ import annotations

import json

from tests.helpers.http import add_client, metric_samples, metric_total, post_form
from tests.helpers.poll import eventually_sync
from tokensrv.server.observe import RequestTally

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
    counted: list[float] = []

    def all_counted() -> bool:
        samples = metric_samples(server)
        assert metric_total(samples, "tokensrv_tokens_issued_total", grant_type="client_credentials") == N
        counted.append(metric_total(samples, "tokensrv_http_requests_total", route="/oauth2/token", status="200"))
        assert counted[-1] <= N
        return counted[-1] == N

    eventually_sync(all_counted, lambda: f"all {N} requests counted ({counted[-1]} were)",
                    timeout=10 * RequestTally.PUBLISH_INTERVAL)
    for _ in range(4):  # whichever worker answers the scrape: both published everything
        samples = metric_samples(server)
        assert metric_total(samples, "tokensrv_http_requests_total", route="/oauth2/token", status="200") == N


def test_the_metrics_folder_made_for_the_workers_is_removed_at_exit(start_server, tmp_path):
    server = start_server(TOKENSRV_WORKERS="2", TMPDIR=str(tmp_path))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tokensrv-metrics-")]
    server.stop()
    assert server.process.returncode == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("tokensrv-metrics-")]
