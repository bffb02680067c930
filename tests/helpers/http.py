"""Plain-HTTP helpers for the e2e tests: each call opens its own connection (urllib)."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.live import LiveServer


def post_form(url: str, data: dict[str, str], client_id: str | None = None, secret: str | None = None,
              timeout: float = 30) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if client_id is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(url, urllib.parse.urlencode(data).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body.startswith(b"{") else {}


def add_client(server: LiveServer, client_id: str, *flags: str) -> str:
    created = json.loads(server.cli("client", "add", "--id", client_id, *flags, "--json").stdout)
    return str(created["client_secret"])


def metric_samples(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric_total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


