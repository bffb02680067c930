"""A/B of two tokensrv builds on this machine: `python -m bench.ab --a /work/main/.venv/bin`
(the other checkout's venv; --b defaults to this one's). Both serve the same store and keys, one
worker each, pinned to the same core; the token (client_credentials, refresh_token) and JWKS loads
alternate between them slice by slice (A, B, then B, A in the next round), so a burst of unrelated
load on a shared machine hits both, and the medians are reported. With --profile each build is
also sampled with py-spy under the client_credentials and refresh_token loads, and the share of
the serving thread's CPU spent in logging, metrics, the middlewares and so on (bench/shares.py)
is printed next to the other's (a share moves far less with the machine's load than a rate does).

Meant for changes to the request path: `make bench` gives the figures against their references.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from . import procs, shares, wrk
from .procs import Layout, Server, cli, pin_self, tokensrv_env, valkey
from .run import JWKS, TOKEN, Bench, Plan, median

PROFILED = ("client_credentials", "refresh_token")


@contextlib.contextmanager
def serving(bin_dir: Path, env: dict[str, str], cores: tuple[int, ...], workdir: Path) -> Iterator[Server]:
    saved = procs.BIN
    procs.BIN = bin_dir  # procs.tokensrv starts BIN/tokensrv
    try:
        with procs.tokensrv(env, 1, cores, workdir) as server:
            yield server
    finally:
        procs.BIN = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--a", type=Path, required=True, help="venv bin folder of build A (the baseline)")
    parser.add_argument("--b", type=Path, default=Path(sys.executable).parent, help="build B's (default: this one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slice", type=int, default=3, help="seconds per slice")
    parser.add_argument("--profile", type=int, default=0, metavar="ROUNDS",
                        help="py-spy rounds per build under client_credentials and refresh_token (0: none)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    procs.require_tools()
    layout = Layout.detect()
    pin_self(layout.load)
    cores = layout.server(1)
    builds = {"A": args.a.resolve(), "B": args.b.resolve()}
    with tempfile.TemporaryDirectory(prefix="tokensrv-ab-") as tmp, valkey(Path(tmp) / "valkey", layout.store) as store:
        workdir = Path(tmp)
        bench = Bench(Plan.of(False), layout, workdir)
        bench.redis_url, keys_dir = store.url, workdir / "keys"
        bench.env = tokensrv_env(store.url, keys_dir)
        cli(bench.env, "keys", "init")
        bench.svc, bench.app = bench.register(bench.env)
        token_args = (bench.basic(bench.svc),)
        with contextlib.ExitStack() as stack:
            servers = {name: stack.enter_context(serving(bin_dir, bench.env, cores, workdir))
                       for name, bin_dir in builds.items()}
            refresh_args = {name: bench.refresh_args(store.url, keys_dir, bench.app, f"refresh-{name}")
                            for name in servers}
            loads: dict[str, Callable[[Server, str, float], wrk.Load]] = {
                "client_credentials": lambda s, _, t: bench.drive(s.url + TOKEN, "token.lua", round(t),
                                                                   args=token_args),
                "refresh_token": lambda s, name, t: bench.drive(s.url + TOKEN, "refresh.lua", round(t),
                                                                 args=refresh_args[name]),
                "jwks": lambda s, _, t: bench.drive(s.url + JWKS, "get.lua", round(t)),
            }
            for name, server in servers.items():  # warm up
                for load in loads.values():
                    load(server, name, 1)
            rates: dict[tuple[str, str], list[float]] = {}
            for i in range(args.rounds):
                order = list(servers) if i % 2 == 0 else list(reversed(servers))
                for load_name, load in loads.items():
                    for name in order:
                        found = load(servers[name], name, args.slice)
                        if found.errors:
                            raise RuntimeError(f"{name} {load_name}: {found.errors} errors")
                        rates.setdefault((load_name, name), []).append(found.rate)
                print(f"round {i + 1}: " + ", ".join(f"{k[0]} {k[1]} {v[-1]:,.0f}" for k, v in rates.items()),
                      flush=True)
            args.out.mkdir(parents=True, exist_ok=True)
            sampled: dict[tuple[str, str], list[Path]] = {}  # (load, build) -> raw sample files
            for i in range(args.profile):
                for load_name in PROFILED:
                    for name in (list(servers) if i % 2 == 0 else list(reversed(servers))):
                        server, out = servers[name], args.out / f"ab-{load_name}-{name}-{i}.txt"
                        shares.sample(server.process.pid, lambda s=server, n=name, ln=load_name: loads[ln](
                            s, n, args.slice), args.slice, out)
                        sampled.setdefault((load_name, name), []).append(out)
    print(f"\nA = {builds['A']}\nB = {builds['B']}\n{args.rounds} rounds of {args.slice} s, 1 worker on core "
          f"{procs.spell(cores)}, medians (all slices)")
    for load_name in loads:
        a, b = (rates[load_name, n] for n in ("A", "B"))
        print(f"  {load_name:20} A {median(a):8,.0f}  B {median(b):8,.0f} req/s  B/A {median(b) / median(a):.3f}"
              f"   A {[round(x) for x in a]}  B {[round(x) for x in b]}")
    for load_name in PROFILED if args.profile else ():
        found = {name: shares.shares("".join(p.read_text() for p in sampled[load_name, name])) for name in builds}
        print(f"\nshare of the server's CPU samples under {load_name}, {args.profile} profiles of {args.slice} s "
              "each, pooled")
        for part in found["A"]:
            print(f"  {part:28} A {found['A'][part]:5.1f} %  B {found['B'][part]:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
