"""The FastAPI, Flask and Django examples run as their guides say (docs/guides/downstream/), each
as its own process beside a real `tokensrv serve`: a token from the client_credentials grant is
accepted, and refused once `tokensrv token revoke` has revoked it. The guides show each example's
file as it is, and these commands."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import http_post
from tests.helpers.live import LiveServer
from tests.helpers.poll import eventually_sync
from tests.helpers.ports import free_port
from tests.helpers.verify_live import DEADLINE

REPO = Path(__file__).resolve().parents[2]
GUIDES = REPO / "docs" / "guides" / "downstream"
# each guide's run command, as it shows it (the port is the test's)
COMMANDS = {
    "fastapi": ".venv/bin/python -m examples.downstream.fastapi_app",
    "flask": ".venv/bin/flask --app examples.downstream.flask_app run --port 8092",
    "django": ".venv/bin/python -m examples.downstream.django_app runserver 127.0.0.1:8093 --noreload",
}
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```\n", re.DOTALL)


def argv(framework: str, port: int) -> list[str]:
    """The guide's command with this interpreter and a free port."""
    words = COMMANDS[framework].replace("8092", str(port)).replace("8093", str(port)).split()
    if words[0] == ".venv/bin/flask":
        words[0:1] = ["-m", "flask"]
    else:
        words = words[1:]
    return [sys.executable, *words]


def get(url: str, token: str | None) -> int:
    request = urllib.request.Request(url, headers={} if token is None else {"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code
    except OSError:
        return 0  # not listening yet


@pytest.fixture(params=sorted(COMMANDS))
def service(request: pytest.FixtureRequest, live_server: LiveServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENSRV_ISSUER": live_server.url,
           "TOKENSRV_REDIS_URL": live_server.redis_url, "ORDERS_PORT": str(port)}
    log_path = tmp_path / "service.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv(request.param, port), cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/orders"
    try:
        def listening() -> bool:
            assert process.poll() is None, log_path.read_text()
            return get(url, None) == 401
        eventually_sync(listening, lambda: f"the example listening:\n{log_path.read_text()}", timeout=DEADLINE)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_example_verifies_a_token_and_refuses_it_once_revoked(service: str, live_server: LiveServer) -> None:
    created = live_server.cli("client", "add", "--id", "orders-cli", "--grant-type", "client_credentials",
                              "--scope", "orders:read", "--audience", "orders", "--json").stdout
    secret = re.search(r'"client_secret": "([^"]+)"', created)
    assert secret is not None
    status, body = http_post(live_server.url + "/oauth2/token",
                             {"grant_type": "client_credentials", "scope": "orders:read"}, "orders-cli", secret[1])
    assert status == 200, body
    token = body["access_token"]
    assert get(service, token) == 200
    live_server.cli("token", "revoke", "-", input=token)
    eventually_sync(lambda: get(service, token) == 401, "the example refuses the revoked token", timeout=DEADLINE)


@pytest.mark.parametrize("framework", sorted(COMMANDS))
def test_the_guide_shows_the_example_as_it_is_and_how_to_run_it(framework: str) -> None:
    guide = (GUIDES / f"{framework}.md").read_text()
    shown = EXAMPLE.findall(guide)
    assert [path for path, _ in shown] == [f"examples/downstream/{framework}_app.py"]
    assert shown[0][1] == (REPO / shown[0][0]).read_text()
    assert COMMANDS[framework] in guide
