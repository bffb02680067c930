"""Real `tokensrv serve` processes over HTTP, against the session's Valkey: the fixtures that start them
(used by tests/e2e and tests/security through their conftest), and waiting for one to be ready."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

from tests.helpers.poll import eventually_sync
from tests.helpers.ports import free_port

READY_TIMEOUT = 30.0


@dataclass
class LiveServer:
    url: str
    port: int
    keys_dir: Path
    redis_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `tokensrv ARGS` against this server's store and keys folder."""
        result = subprocess.run([sys.executable, "-m", "tokensrv", *args], env=self.env, input=input,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"tokensrv {' '.join(args)} failed: {result.stderr}")
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll /readyz until it answers 200: the server is up, its store reachable, a key loaded."""
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"tokensrv exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    eventually_sync(ready, lambda: f"tokensrv ready:\n{log_path.read_text()}", timeout=READY_TIMEOUT)


@pytest.fixture
def start_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start `tokensrv serve` processes; `keys_dir` may be shared between them. All are stopped after."""
    Redis.from_url(redis_url).flushdb()
    started: list[LiveServer] = []

    def start(keys_dir: Path | None = None, **env_overrides: str) -> LiveServer:
        port = int(env_overrides.get("TOKENSRV_PORT") or free_port())  # given: an issuer naming it (localhost)
        workdir = tmp_path_factory.mktemp("server")
        keys_dir = keys_dir or workdir / "keys"
        env = {**os.environ, "TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(keys_dir),
               "TOKENSRV_PORT": str(port), "TOKENSRV_HOST": "127.0.0.1", **env_overrides}
        log_path = workdir / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve"], env=env, cwd=workdir,
                                       stdout=log, stderr=subprocess.STDOUT)
        url = env.get("TOKENSRV_ISSUER", f"http://127.0.0.1:{port}")
        server = LiveServer(f"http://127.0.0.1:{port}", port, keys_dir, redis_url, env, process, log_path)
        started.append(server)
        wait_ready(server.url, process, log_path)
        assert url
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def live_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server()
