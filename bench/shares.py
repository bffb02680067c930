"""Where a server's CPU goes, from py-spy's raw (collapsed) samples: the share of the samples in
logging, metrics, the middlewares, signing, the store client, the endpoint's own code and aiohttp.
A share moves far less with a busy machine than a rate does (bench/ab.py, make bench's profile)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Frames read "function (path:line)", a path under site-packages or the standard library given from
# the package's folder ("logging/__init__.py"). A sample is charged to the first of these its stack
# meets from the innermost frame outwards: a formatter called from the middleware is logging, the
# middleware's own code is middleware, RSA signing called from the endpoint is signing.
_REQUEST_PATH = ("tokensrv/", "(oauth/", "(server/", "(observability/", "(errors.py", "(config.py")
CATEGORIES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("logging", lambda f: "(logging/" in f or "observability/logs.py" in f),
    ("metrics", lambda f: "prometheus_client/" in f or "observability/metrics.py" in f
     or f.startswith("RequestTally.")),
    ("tracing", lambda f: "opentelemetry/" in f or "server/tracing.py" in f),
    ("middlewares", lambda f: "server/observe.py" in f or "server/limits.py" in f
     or f.startswith("error_middleware ") or "aiohttp/web_middlewares.py" in f),
    ("signing", lambda f: "keys/signing.py" in f or f.startswith("sign (") or "joserfc/" in f
     or "cryptography/" in f),
    ("store", lambda f: "(redis/" in f or "tokensrv/store/" in f),
    # the rest of tokensrv's request path (the CLI's frames below the event loop are not). py-spy
    # names an editable install's files from the package's folder ("oauth/endpoints/token.py"):
    # matching "tokensrv/" alone charged the endpoint's own code to the middleware that called it
    ("token endpoint", lambda f: any(part in f for part in _REQUEST_PATH) and "cli/" not in f),
    ("aiohttp", lambda f: "(aiohttp/" in f or "(multidict/" in f or "(yarl/" in f),
)


def category(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, matches in CATEGORIES:
            if matches(frame):
                return name
    return "other (event loop, stdlib)"


def shares(collapsed: str) -> dict[str, float]:
    """py-spy's raw (collapsed) output -> percent of samples per category."""
    found: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            found[category(stack.split(";"))] += int(count)
    total = sum(found.values()) or 1
    return {name: found[name] * 100 / total for name in (*(c for c, _ in CATEGORIES), "other (event loop, stdlib)")}


def sample(pid: int, load: Callable[[], Any], seconds: int, out: Path) -> dict[str, float]:
    """The shares of process `pid`'s samples (py-spy, 250 Hz, CPU only) while `load` runs for
    about `seconds`; the raw samples are left in `out`."""
    py_spy = Path(sys.executable).parent / "py-spy"
    recorder = subprocess.Popen([str(py_spy), "record", "--rate", "250", "--format", "raw", "--output", str(out),
                                 "--pid", str(pid), "--duration", str(seconds), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    load()
    _, err = recorder.communicate(timeout=60)
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()[-500:]}")
    return shares(out.read_text())
