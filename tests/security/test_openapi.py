"""The live server against its published OpenAPI 3.1 description (openapi.yaml), with schemathesis:
never a server error, and every answer's status, content type, headers and body as documented.

Every operation of the document is run (tests/integration/test_openapi_document.py checks that
the document names every route), registration included: the server has TOKENSRV_REGISTRATION=on,
requests to /oauth2/register carry an initial access token, and each request to a
registration_client_uri is made for a client registered just before, with its registration
access token (one token serves one request: reads and updates rotate it). Those requests are
also made once without a usable token, so the 401 answers are checked too.

Bounded and reproducible: a fixed number of examples per operation, generated derandomized (the
same cases every run) and without Hypothesis' example database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from redis import Redis
from schemathesis import checks

from tests.helpers.live import LiveServer, wait_ready
from tests.helpers.ports import free_port

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
# the admin API is on its own listener, off here: its routes are checked against the document by
# tests/integration/test_openapi_document.py and answered by tests/integration/test_admin_api_*.py
schema = schemathesis.openapi.from_path(SPEC).exclude(path_regex="^/admin/")
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]
REGISTER = "/oauth2/register"
REGISTERED = REGISTER + "/{client_id}"
# per operation, in the generation phase (schemathesis' coverage phase adds its own, bounded,
# cases); 26 operations: the module takes under a minute on a slow 2-core machine
EXAMPLES = 40
# registrations the run makes: one for each case at a registration_client_uri and each accepted
# POST /oauth2/register (about 370 today); the most one token allows
INITIAL_TOKEN_USES = 1000
PLAIN_CLIENT = {"redirect_uris": ["https://rp.example.org/cb"], "client_name": "Schemathesis"}


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


@pytest.fixture(scope="module")
def initial_token(server: LiveServer) -> str:
    minted = server.cli("client", "token", "--ttl", "1h", "--uses", str(INITIAL_TOKEN_USES), "--json")
    return str(json.loads(minted.stdout)["initial_access_token"])


def register(server: LiveServer, initial_token: str) -> dict[str, Any]:
    """A client registered for one request at its registration_client_uri."""
    request = urllib.request.Request(server.url + REGISTER, data=json.dumps(PLAIN_CLIENT).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {initial_token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
        registered: dict[str, Any] = json.loads(resp.read())
        return registered


def with_registration_token(case: schemathesis.Case[Any], server: LiveServer, initial_token: str) -> dict[str, str]:
    """Make a registration case one the server can say yes to (the generated values decide the
    rest); the Authorization header to send it with."""
    if case.operation.path == REGISTER:
        return {"Authorization": f"Bearer {initial_token}"}
    registered = register(server, initial_token)
    case.path_parameters = {**(case.path_parameters or {}), "client_id": registered["client_id"]}
    if case.method == "PUT" and isinstance(case.body, dict):  # §2.2: the body names the client
        case.body = {**case.body, "client_id": registered["client_id"]}
    return {"Authorization": f"Bearer {registered['registration_access_token']}"}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                 HealthCheck.too_slow])
def test_the_server_matches_its_openapi_description(case: schemathesis.Case[Any], server: LiveServer,
                                                    initial_token: str) -> None:
    if case.operation.path in (REGISTER, REGISTERED):
        # as generated first (no token, or not this client's), then with the token that works
        case.call_and_validate(base_url=server.url, checks=CHECKS, allow_redirects=False)
        # on the case itself: a `headers=` argument does not reach cases made to test missing auth
        case.headers = {**(case.headers or {}), **with_registration_token(case, server, initial_token)}
        case.call_and_validate(base_url=server.url, checks=CHECKS, allow_redirects=False)
        return
    case.call_and_validate(base_url=server.url, checks=CHECKS, allow_redirects=False)
