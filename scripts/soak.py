"""Soak: bounded mixed load on loopback against a real `tokensrv serve` and a real Valkey, with a
forced key rotation and a Valkey restart in the middle, checking invariants all along.

    python scripts/soak.py --duration 60

Load: password and client_credentials tokens, refreshes, revocations, introspection, JWKS,
browser logins (authorize + login form + code), and verification of every fresh access token with
tokensrv.verify and its revocation mirror. Invariants (each violation is counted; any makes the
exit status 1): no 500; no valid token rejected by the verifier; no revoked token accepted once
the mirror has the revocation; no refresh token accepted twice; no 503 outside the Valkey restart.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from prometheus_client import CollectorRegistry

from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.verify import InvalidToken, TokenVerifier

PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1:9000/cb"
READY_TIMEOUT = 30.0
PROPAGATION_TIMEOUT = 10.0
# After Valkey is back (tokensrv ready again), each pooled connection that predates the restart
# fails once (redis-py does not retry it): those 503s belong to the restart too.
RECONNECT_GRACE = 3.0
KEEP_TOKENS = 300.0  # seconds a token stays in the pool (well inside the access-token lifetime)
KINDS = ("password", "client_credentials", "refresh", "replay", "revoke", "introspect", "jwks", "login")
WEIGHTS = (10, 10, 15, 2, 6, 8, 5, 2)


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Issued:
    access_token: str
    refresh_token: str | None
    at: float
    previous: str | None = None  # the refresh token this one replaced

    @property
    def family(self) -> str:
        """The refresh family (the token's first 21 characters encode its 16-byte id), or ""."""
        return (self.refresh_token or "")[:21]


@dataclass
class Soak:
    url: str
    env: dict[str, str]
    http: aiohttp.ClientSession
    verifier: TokenVerifier
    auth: dict[str, str]
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    live: list[Issued] = field(default_factory=list)  # tokens nothing has revoked
    # refresh tokens whose successor has been used too: presenting one again is reuse, not a retry
    # (a predecessor whose successor is still unused is answered again: TOKENSRV_REFRESH_REUSE_GRACE)
    spent: list[str] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)  # families killed on purpose (reuse detection)
    outage: tuple[float, float] | None = None  # (start, end) of the Valkey restart; end 0: ongoing
    outage_503: int = 0

    def violation(self, what: str, detail: str) -> None:
        self.violations[what] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{what}: {detail[:300]}")

    def in_outage(self, started: float) -> bool:
        return self.outage is not None and (self.outage[1] == 0 or started <= self.outage[1] + RECONNECT_GRACE)

    def record(self, kind: str, status: int, started: float, body: str) -> None:
        self.statuses[(kind, status)] += 1
        if status >= 500 and status != 503:
            self.violation("server error", f"{kind} {status} {body}")
        elif status == 503 and self.in_outage(started):
            self.outage_503 += 1
        elif status == 503:
            self.violation("503 outside the Valkey restart", f"{kind} {body}")

    async def post(self, kind: str, path: str, form: dict[str, str], headers: dict[str, str] | None = None
                   ) -> tuple[int, dict[str, Any]]:
        started = time.monotonic()
        async with self.http.post(self.url + path, data=form, headers=self.auth if headers is None else headers,
                                  allow_redirects=False) as resp:
            text = await resp.text()
            self.record(kind, resp.status, started, text)
            body = json.loads(text) if resp.content_type == "application/json" and text else {}
            return resp.status, body


# ---- the load ----

async def verify_fresh(s: Soak, token: str, family: str = "") -> None:
    try:
        await s.verifier.verify(token)
    except InvalidToken as exc:
        if family not in s.dead:  # a concurrent replay may have killed the family meanwhile
            s.violation("valid token rejected by the verifier", repr(exc))


async def issue(s: Soak, kind: str) -> None:
    form = ({"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "openid orders:read"}
            if kind == "password" else {"grant_type": "client_credentials"})
    status, body = await s.post(kind, "/oauth2/token", form)
    if status == 200:
        await verify_fresh(s, body["access_token"])
        s.live.append(Issued(body["access_token"], body.get("refresh_token"), time.monotonic()))


async def refresh(s: Soak) -> None:
    candidates = [i for i in s.live if i.refresh_token]
    if not candidates:
        return
    issued = random.choice(candidates)
    s.live.remove(issued)
    assert issued.refresh_token
    status, body = await s.post("refresh", "/oauth2/token",
                                {"grant_type": "refresh_token", "refresh_token": issued.refresh_token})
    if status == 200:
        if issued.previous:
            s.spent.append(issued.previous)
        await verify_fresh(s, body["access_token"], issued.family)
        if issued.family not in s.dead:
            s.live.append(Issued(body["access_token"], body["refresh_token"], time.monotonic(), issued.refresh_token))
    elif status != 503 and issued.family not in s.dead:
        s.violation("a live refresh token refused", f"{status} {body}")


async def replay(s: Soak) -> None:
    """A refresh token presented again after its successor was used must fail (and kills its
    family: we drop ours)."""
    if not s.spent:
        return
    token = s.spent.pop(random.randrange(len(s.spent)))
    status, _ = await s.post("replay", "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": token})
    if status == 200:
        s.violation("refresh token accepted twice", token[:8])
    family = token[:21]  # its family is revoked with it: ours goes out of the pool
    s.dead.add(family)
    s.live = [i for i in s.live if i.family != family]


def jti_of(token: str) -> str:
    part = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))["jti"])


async def revoke(s: Soak) -> None:
    if not s.live:
        return
    issued = s.live.pop(random.randrange(len(s.live)))
    status, _ = await s.post("revoke", "/oauth2/revoke", {"token": issued.access_token})
    if status != 200:
        return
    jti, mirror = jti_of(issued.access_token), s.verifier.mirror
    assert mirror is not None
    try:
        await mirror.wait_for(lambda: jti in mirror.state.jti, PROPAGATION_TIMEOUT)
    except TimeoutError:
        s.violation("revocation not propagated", jti)
        return
    try:
        await s.verifier.verify(issued.access_token)
        s.violation("revoked token accepted by the verifier", jti)
    except InvalidToken:
        pass
    status, body = await s.post("introspect", "/oauth2/introspect", {"token": issued.access_token})
    if status == 200 and body.get("active"):
        s.violation("revoked token active at introspection", jti)


async def introspect(s: Soak) -> None:
    if s.live:
        issued = s.live.pop(random.randrange(len(s.live)))  # no other worker revokes it meanwhile
        status, body = await s.post("introspect", "/oauth2/introspect", {"token": issued.access_token})
        if status == 200 and not body.get("active") and issued.family not in s.dead:
            s.violation("live token inactive at introspection", jti_of(issued.access_token))
        if issued.family not in s.dead:
            s.live.append(issued)


async def jwks(s: Soak) -> None:
    started = time.monotonic()
    async with s.http.get(s.url + "/.well-known/jwks.json") as resp:
        s.record("jwks", resp.status, started, await resp.text())
        if resp.status == 503:
            s.violation("JWKS unavailable", "503")


async def login(s: Soak) -> None:
    """A browser: authorize, the login form with its cookies, then the code for tokens (PKCE)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        started = time.monotonic()
        resp = await browser.get(s.url + "/oauth2/authorize", allow_redirects=False, params={
            "client_id": "web", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "soak"})
        s.record("login", resp.status, started, await resp.text())
        if resp.status != 303:
            return
        location = resp.headers["Location"]
        page = await browser.get(s.url + location)
        html = await page.text()
        s.record("login", page.status, started, html)
        if page.status != 200:
            return
        csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        resp = await browser.post(s.url + "/login", allow_redirects=False, data={
            "request": parse_qs(urlsplit(location).query)["request"][0], "csrf_token": csrf,
            "username": "alice", "password": PASSWORD})
        s.record("login", resp.status, started, await resp.text())
        if resp.status != 303:
            return
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    await s.post("login", "/oauth2/token", {"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "code_verifier": verifier,
                                            "client_id": "web"}, headers={})


ACTIONS = {"refresh": refresh, "replay": replay, "revoke": revoke, "introspect": introspect, "jwks": jwks,
           "login": login}


async def worker(s: Soak, deadline: float) -> None:
    while time.monotonic() < deadline:
        kind = random.choices(KINDS, WEIGHTS)[0]
        try:
            if kind in ("password", "client_credentials"):
                await issue(s, kind)
            else:
                await ACTIONS[kind](s)
        except aiohttp.ClientError as exc:
            s.violation("connection failure", f"{kind} {exc!r}")
        now = time.monotonic()
        s.live = [i for i in s.live if now - i.at < KEEP_TOKENS][-2000:]
        s.spent = s.spent[-2000:]


# ---- the environment: Valkey, tokensrv, CLI, the events in the middle ----

def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "tokensrv", *args], env=env, input=stdin, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return dict(json.loads(out)) if out.strip().startswith("{") else {}


async def wait_ready(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("tokensrv did not become ready")
        await asyncio.sleep(0.05)  # polling a condition, with a deadline


async def events(s: Soak, valkey: list[EmbeddedValkey], duration: float, rotations: list[str]) -> None:
    """At a third of the run, a forced key rotation; at half, a Valkey restart (same port and AOF)."""
    start = time.monotonic()
    await asyncio.sleep(duration / 3)  # a point in the run, not synchronisation
    await asyncio.to_thread(cli, s.env, "keys", "rotate")
    rotations.append("rotated")
    await asyncio.sleep(max(0.0, start + duration / 2 - time.monotonic()))
    s.outage = (time.monotonic(), 0.0)
    await asyncio.to_thread(valkey[-1].stop)
    valkey.append(EmbeddedValkey(valkey[-1].data_dir, port=valkey[-1].port))
    await asyncio.to_thread(valkey[-1].start)
    await wait_ready(s.http, s.url)
    s.outage = (s.outage[0], time.monotonic())


def summary(s: Soak, duration: float, rotations: list[str]) -> str:
    lines = [(f"soak: {duration:.0f} s, {sum(s.statuses.values())} requests, key rotations: {len(rotations)}, "
              f"Valkey restarts: {1 if s.outage else 0}")]
    if s.outage and s.outage[1]:
        lines.append(f"Valkey restart window: {s.outage[1] - s.outage[0]:.1f} s (+{RECONNECT_GRACE:.0f} s to "
                     f"reconnect), 503s in it (allowed): {s.outage_503}")
    lines.append("requests by kind and status:")
    for (kind, status), count in sorted(s.statuses.items()):
        lines.append(f"  {kind:<20} {status}  {count}")
    lines.append(f"invariant violations: {sum(s.violations.values())}")
    for what, count in sorted(s.violations.items()):
        lines.append(f"  {what}: {count}")
    lines += ["  e.g. " + e for e in s.examples]
    return "\n".join(lines)


def start_server(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    with open(workdir / "server.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "tokensrv", "serve"], env=env, cwd=workdir,
                                stdout=log, stderr=subprocess.STDOUT)


async def run(duration: float, workers: int, workdir: Path) -> int:
    valkey = [EmbeddedValkey(workdir / "valkey", port=free_port())]
    valkey[0].start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TOKENSRV_REDIS_URL": valkey[0].url, "TOKENSRV_KEYS_DIR": str(workdir / "keys"),
           "TOKENSRV_PORT": str(port), "TOKENSRV_HOST": "127.0.0.1", "TOKENSRV_ISSUER": url,
           "TOKENSRV_JWKS_MAX_AGE": "2", "TOKENSRV_KEY_CHECK_INTERVAL": "0.5"}
    server = start_server(env, workdir)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, url)
            created = cli(env, "client", "add", "--id", "soak", "--first-party", "--audience", "orders",
                          "--grant-type", "password", "--grant-type", "refresh_token", "--grant-type",
                          "client_credentials", "--scope", "openid", "--scope", "orders:read")
            cli(env, "client", "add", "--id", "web", "--public", "--redirect-uri", REDIRECT, "--grant-type",
                "authorization_code", "--scope", "openid")
            cli(env, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
            auth = {"Authorization": "Basic " + base64.b64encode(
                f"soak:{created['client_secret']}".encode()).decode()}
            async with TokenVerifier(url, "orders", redis_url=valkey[0].url,
                                     registry=CollectorRegistry()) as verifier:
                s = Soak(url, env, http, verifier, auth)
                rotations: list[str] = []
                deadline = time.monotonic() + duration
                await asyncio.gather(events(s, valkey, duration, rotations),
                                     *(worker(s, deadline) for _ in range(workers)))
                print(summary(s, duration, rotations))
        if "Traceback" in (workdir / "server.log").read_text(errors="replace"):
            print("invariant violation: a traceback in the server log")
            return 1
        return 1 if s.violations or not rotations else 0
    finally:
        server.terminate()
        server.wait(timeout=15)
        valkey[-1].stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent clients (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokensrv-soak-") as workdir:
        sys.exit(asyncio.run(run(args.duration, args.workers, Path(workdir))))


if __name__ == "__main__":
    main()
