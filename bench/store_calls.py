"""Store commands per token request: `python -m bench.store_calls [--n 200] [--bin DIR]`.

Starts its own Valkey and one tokensrv worker (this venv's, or the build in --bin), registers the
bench's clients and user, and sends N refresh_token requests one after another (each of another family) (then N
client_credentials, then N JWKS GETs), reading Valkey's `INFO commandstats` before and after each
batch. It prints the commands per request by name (EVALSHA is one round trip that runs a script;
the calls the script makes inside it are listed as well, marked "in a script"): a figure that does
not move with the machine's load, unlike a request rate.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from . import procs
from .procs import Layout, cli, tokensrv_env, valkey
from .run import JWKS, TOKEN, Bench, Plan
from .seed import refresh_tokens

# what Valkey counts per call made by a script (it counts EVALSHA itself too): no round trip each
IN_SCRIPT = {"lrange", "lset", "ltrim", "rpush", "expireat", "expiretime", "get", "exists", "del", "type",
             "hgetall", "zadd", "zremrangebyrank", "xadd", "set", "incr"}
VALKEY_CPU = "valkey cpu"
SCRIPT_TIME = "µs in scripts"


def commandstats(redis: Redis) -> Counter[str]:
    found: Counter[str] = Counter()
    for name, stats in redis.info("commandstats").items():
        found[name.removeprefix("cmdstat_")] = int(stats["calls"])
        found[SCRIPT_TIME] += int(stats["usec"]) if name == "cmdstat_evalsha" else 0
    return found


def post(url: str, body: str, authorization: str) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": authorization})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as answer:
        answer.read()


def cpu_seconds(redis: Redis) -> float:
    found = redis.info("cpu")
    return float(found["used_cpu_user"]) + float(found["used_cpu_sys"])


def measure(redis: Redis, n: int, send: Callable[[], object]) -> dict[str, float]:
    before, cpu = commandstats(redis), cpu_seconds(redis)
    for _ in range(n):
        send()
    spent, after = cpu_seconds(redis) - cpu, commandstats(redis)
    # the INFO calls themselves show up twice
    calls = {name: (after[name] - before[name] - 2 * (name == "info")) / n for name in sorted(after)}
    return {**{name: count for name, count in calls.items() if count > 0}, VALKEY_CPU: spent * 1e6 / n}


def report(title: str, per_request: dict[str, float]) -> None:
    cpu, scripts = per_request.pop(VALKEY_CPU), per_request.pop(SCRIPT_TIME, 0.0)
    trips = sum(v for k, v in per_request.items() if k not in IN_SCRIPT or "evalsha" not in per_request)
    print(f"{title}: {trips:.2f} round trips per request; Valkey CPU {cpu:.0f} µs per request, "
          f"{scripts:.0f} µs of it running scripts")
    for name, count in per_request.items():
        marked = " (in a script)" if name in IN_SCRIPT and "evalsha" in per_request else ""
        print(f"  {name:16} {count:6.2f}{marked}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_calls", description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent, help="the build's venv bin folder")
    args = parser.parse_args(argv)
    procs.BIN = args.bin.resolve()
    layout = Layout.detect()
    with tempfile.TemporaryDirectory(prefix="tokensrv-calls-") as tmp, \
            valkey(Path(tmp) / "valkey", layout.store) as store:
        workdir = Path(tmp)
        bench = Bench(Plan.of(False), layout, workdir)
        env = tokensrv_env(store.url, workdir / "keys")
        cli(env, "keys", "init")
        svc, app = bench.register(env)
        # one rotation per family, as the bench's refresh load does (2000 families, a few rotations each)
        tokens = asyncio.run(refresh_tokens(store.url, workdir / "keys", app[0], "bench-user", args.n + 1))
        redis = Redis.from_url(store.url)
        with procs.tokensrv(env, 1, layout.server(1), workdir) as server:
            url, app_auth, svc_auth = server.url + TOKEN, "Basic " + bench.basic(app), "Basic " + bench.basic(svc)
            post(url, "grant_type=client_credentials&scope=read", svc_auth)  # the client caches warm

            def refresh() -> None:
                post(url, "grant_type=refresh_token&refresh_token=" + tokens.pop(), app_auth)

            refresh()
            report("refresh_token", measure(redis, args.n, refresh))
            report("client_credentials", measure(
                redis, args.n, lambda: post(url, "grant_type=client_credentials&scope=read", svc_auth)))
            report("jwks", measure(redis, args.n, lambda: get(server.url + JWKS)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
