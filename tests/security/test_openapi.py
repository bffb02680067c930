"""The live server against its published OpenAPI 3.1 description (openapi.yaml), with schemathesis:
never a server error, and every answer's status, content type, headers and body as documented."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from redis import Redis
from schemathesis import checks

from tests.conftest import free_port
from tests.e2e.conftest import LiveServer, wait_ready

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
schema = schemathesis.openapi.from_path(SPEC)
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]


@pytest.fixture(scope="module")
def server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One `tokensrv serve` for the whole module, with a client and a user for the generator to hit."""
    Redis.from_url(redis_url).flushdb()
    workdir = tmp_path_factory.mktemp("openapi")
    port = free_port()
    env = {**os.environ, "TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(workdir / "keys"),
           "TOKENSRV_PORT": str(port), "TOKENSRV_HOST": "127.0.0.1",
           "TOKENSRV_REGISTRATION": "on"}  # so that /oauth2/register is there to be checked
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve"], env=env, cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", port, workdir / "keys", redis_url, env, process, log_path)
    try:
        wait_ready(server.url, process, log_path)
        server.cli("client", "add", "--id", "web", "--public", "--redirect-uri", "http://127.0.0.1:9000/cb")
        server.cli("client", "add", "--id", "svc")
        server.cli("user", "add", "alice", "--password-stdin", input="correct horse battery staple\n")
        yield server
        assert "Traceback" not in server.log()
    finally:
        server.stop()


@schema.parametrize()
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                 HealthCheck.too_slow])
def test_the_server_matches_its_openapi_description(case: schemathesis.Case[Any], server: LiveServer) -> None:
    case.call_and_validate(base_url=server.url, checks=CHECKS, allow_redirects=False)
