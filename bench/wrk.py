"""Drive wrk (a separate C process, pinned to the load core) and read its JSON summary line."""
from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .procs import pinned

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    errors: int  # socket errors plus non-2xx/3xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float
    extra: dict[str, int]

    @property
    def rate(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Summary:
    """Several slices of one load, interleaved with other loads: medians resist a noisy neighbour."""
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    @classmethod
    def of(cls, slices: list[Load]) -> Summary:
        return cls(statistics.median(s.rate for s in slices), statistics.median(s.p50_ms for s in slices),
                   statistics.median(s.p99_ms for s in slices), sum(s.requests for s in slices),
                   sum(s.errors for s in slices))


def command(url: str, script: str, seconds: float, connections: int, cores: Sequence[int],
            args: Sequence[str] = ()) -> list[str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(LUA / script), url]
    if args:
        argv += ["--", *args]
    return pinned(cores, argv)


def parse(output: str) -> Load:
    line = next(ln for ln in reversed(output.splitlines()) if ln.startswith("{"))
    data = json.loads(line)
    extra = {k: v for k, v in data.items() if k.startswith("tokens_")}
    return Load(
        requests=data["requests"], seconds=data["duration_us"] / 1e6,
        errors=data["socket_errors"] + data["status_errors"],
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        extra=extra)


def run(url: str, script: str, seconds: float, connections: int, cores: Sequence[int],
        args: Sequence[str] = ()) -> Load:
    argv = command(url, script, seconds, connections, cores, args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr.strip() or result.stdout.strip()}")
    return parse(result.stdout)


def start(url: str, script: str, seconds: float, connections: int, cores: Sequence[int],
          args: Sequence[str] = ()) -> subprocess.Popen[str]:
    """A wrk run in the background, for loads that must overlap; finish it with `finish`."""
    return subprocess.Popen(command(url, script, seconds, connections, cores, args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float) -> Load:
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {err.strip() or out.strip()}")
    return parse(out)
