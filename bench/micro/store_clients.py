"""Per-command cost of Valkey clients for Python's asyncio, on the embedded Valkey (loopback TCP):
redis-py (what tokensrv uses: with hiredis, its default when installed, and with its own Python
parser), and coredis and valkey-glide when they can be imported. Not part of `make bench` (those two
are no dependencies of tokensrv): `python -m bench.micro.store_clients`, after `pip install coredis
valkey-glide` for the whole table.

Each client runs two commands: EVALSHA of the refresh grant's script (tokensrv/store/lua/rotate.lua,
a full rotation of one family, which reads its user and session marker too; it "rotates" to the
same token, so every call does the whole work) and a GET of a user record. Each sequentially (one
caller, one round trip after another: the latency a request pays) and from 32 concurrent callers
sharing the client (the cost per command under load, as a worker serving 32 connections sees it).
Also redis-py's refresh path before issue #14 (the read script; then the rotation, GET and EXISTS
in one pipeline) against the one script now.

Rounds alternate the clients (a, b, c, a, b, c, ...) and the median round is printed, in
microseconds per command, elapsed and of this process's CPU: on a shared machine a burst of other
load then hits every client, and the CPU time, which waiting for a core does not inflate much,
still compares the clients' own cost. Valkey
is pinned to the last core and this process to the first; the event loop is uvloop when installed,
as `tokensrv serve` runs.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis._parsers import _AsyncRESP2Parser
from redis.asyncio import ConnectionPool, Redis

from bench.procs import free_port
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.oauth.own_tokens import refresh_digest
from tokensrv.store import RefreshFamily, User, keyspace
from tokensrv.store.redis import RedisStore
from tokensrv.store.refresh import _rotate_args
from tokensrv.store.scripts import READ_FAMILY as _READ_FAMILY
from tokensrv.store.scripts import ROTATE as _ROTATE

Call = Callable[[], Awaitable[Any]]
SUB = "0123456789abcdef0123456789abcdef"
FAMILY_KEY, USER_KEY, ENDED_KEY = keyspace.family("bench"), keyspace.user(SUB), keyspace.ended("bench-sid")


def rotation_args() -> list[bytes | str]:
    """The script's arguments as rotate_with_user sends them on one server. The token rotates to
    itself, and the access token it records expires now, so the family stays the same size."""
    digest, now = refresh_digest("bench token"), int(time.time())
    # no grace, no lifetime cap, no scope narrowing, not DPoP-bound; then the user and ended prefixes
    return [*_rotate_args(digest, digest, "app", now, "bench-jti", now, 3600, 0), 0, "", "",
            keyspace.USER_PREFIX, keyspace.ENDED_PREFIX]


async def seed(url: str) -> None:
    redis = Redis.from_url(url, decode_responses=True)
    store, now = RedisStore(redis), int(time.time())
    await store.users.add_user(User(SUB, "bench", "$argon2id$v=19$m=65536,t=3,p=4$" + "x" * 66, "bench@example.org",
                              ("reader",), created_at=now))
    family = RefreshFamily("bench", "app", SUB, "read write", now * 1000, now + 86400, "bench-sid", now)
    await store.refresh.create_family(family, refresh_digest("bench token"), "j0", now + 900, 3600)
    await redis.aclose()


# ---- the clients: each a name, an opener, and its two commands ----

async def redis_py(url: str, hiredis: bool) -> tuple[Any, Call, Call, Callable[[], Awaitable[None]]]:
    parser = {} if hiredis else {"parser_class": _AsyncRESP2Parser}
    pool = ConnectionPool.from_url(url, decode_responses=True, **parser)
    client = Redis(connection_pool=pool)
    sha, args = await client.script_load(_ROTATE), rotation_args()
    return (client, lambda: client.evalsha(sha, 1, FAMILY_KEY, *args), lambda: client.get(USER_KEY),
            client.aclose)


async def coredis_client(url: str) -> tuple[Any, Call, Call, Callable[[], Awaitable[None]]]:
    import coredis

    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    client = coredis.Redis(host, int(port), decode_responses=True)
    entered = await client.__aenter__()  # coredis 6 runs its connections in a task group
    sha, args = await entered.script_load(_ROTATE), rotation_args()

    async def close() -> None:
        await client.__aexit__(None, None, None)
    return entered, lambda: entered.evalsha(sha, [FAMILY_KEY], args), lambda: entered.get(USER_KEY), close


async def glide_client(url: str) -> tuple[Any, Call, Call, Callable[[], Awaitable[None]]]:
    from glide import GlideClient, GlideClientConfiguration, NodeAddress, Script

    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    client = await GlideClient.create(GlideClientConfiguration([NodeAddress(host, int(port))]))
    script, args = Script(_ROTATE), rotation_args()
    return (client, lambda: client.invoke_script(script, [FAMILY_KEY], args), lambda: client.get(USER_KEY),
            client.close)


def openers(url: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    found: dict[str, Callable[[], Awaitable[Any]]] = {
        "redis-py + hiredis": lambda: redis_py(url, True),
        "redis-py, Python parser": lambda: redis_py(url, False),
    }
    for name, module, opener in (("coredis", "coredis", coredis_client), ("valkey-glide", "glide", glide_client)):
        try:
            __import__(module)
        except ImportError:
            print(f"({name} is not installed: skipped)", file=sys.stderr)
            continue
        found[f"{name} {version(name)}"] = lambda opener=opener: opener(url)
    return found


def version(distribution: str) -> str:
    from importlib import metadata

    return metadata.version(distribution)


# ---- measuring ----

async def per_command(call: Call, ops: int, callers: int) -> tuple[float, float]:
    """Microseconds per command, elapsed and of this process's CPU (every thread: glide's Rust
    core runs in threads of its own), for `ops` commands from `callers` concurrent callers."""
    each = ops // callers

    async def caller() -> None:
        for _ in range(each):
            await call()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    count = each * callers
    return (time.perf_counter() - started) / count * 1e6, (time.process_time() - cpu) / count * 1e6


async def old_and_new_refresh(url: str) -> dict[str, Call]:
    """redis-py + hiredis: the refresh grant's store calls before issue #14 and now."""
    client = Redis.from_url(url, decode_responses=True)
    read_sha, rotate_sha = await client.script_load(_READ_FAMILY), await client.script_load(_ROTATE)
    args = rotation_args()
    old_args = args[:-2]  # the rotation without the user and marker reads (their prefixes): the pipeline sent them

    async def before() -> None:
        await client.evalsha(read_sha, 1, FAMILY_KEY, "")
        async with client.pipeline(transaction=False) as pipe:
            pipe.evalsha(rotate_sha, 1, FAMILY_KEY, *old_args)
            pipe.get(USER_KEY)
            pipe.exists(ENDED_KEY)
            await pipe.execute()

    return {"refresh before: read script, then pipeline (2 round trips)": before,
            "refresh now: one script (1 round trip)": lambda: client.evalsha(rotate_sha, 1, FAMILY_KEY, *args)}


async def measure(url: str, ops: int, rounds: int) -> list[tuple[str, str, list[tuple[float, float]]]]:
    clients = {name: await open_() for name, open_ in openers(url).items()}
    refresh = await old_and_new_refresh(url)
    cases: list[tuple[str, str, Call, int]] = []
    for name, (_, evalsha, get, _) in clients.items():
        for callers in (1, 32):
            cases.append((name, f"EVALSHA rotation, {callers} caller{'s' * (callers > 1)}", evalsha, callers))
            cases.append((name, f"GET, {callers} caller{'s' * (callers > 1)}", get, callers))
    for label, call in refresh.items():
        for callers in (1, 32):
            cases.append(("redis-py + hiredis", f"{label}, {callers} caller{'s' * (callers > 1)}", call, callers))
    for _, _, call, callers in cases:  # warm up: connections opened, the script cached
        await per_command(call, 64 * callers, callers)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {(n, c): [] for n, c, _, _ in cases}
    for _ in range(rounds):
        for name, case, call, callers in cases:
            results[(name, case)].append(await per_command(call, ops, callers))
    for _, _, _, close in clients.values():
        await close()
    return [(name, case, values) for (name, case), values in results.items()]


def table(rows: list[tuple[str, str, list[tuple[float, float]]]]) -> str:
    """The median round of each case: elapsed, and this process's CPU, in microseconds per command.
    On a busy machine the elapsed time is mostly waiting for a core; the CPU time much less so."""
    cases = list(dict.fromkeys(case for _, case, _ in rows))
    lines = [f"{'client':<26} {'command':<70} {'elapsed us':>10} {'(min':>7} {'max)':>7} {'client CPU us':>13}"]
    for case in cases:
        for name, c, values in rows:
            if c == case:
                elapsed = [e for e, _ in values]
                lines.append(f"{name:<26} {case:<70} {statistics.median(elapsed):>10.1f} {min(elapsed):>7.1f} "
                             f"{max(elapsed):>7.1f} {statistics.median(cpu for _, cpu in values):>13.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro.store_clients", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=3200, help="commands per case and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is shown")
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="tokensrv-clients-") as tmp:
        server = EmbeddedValkey(Path(tmp), port=free_port(), appendonly=False)
        server.start()
        try:
            if len(cores) > 1 and server.process is not None:
                os.sched_setaffinity(server.process.pid, {cores[-1]})
                os.sched_setaffinity(0, {cores[0]})
            url = f"redis://127.0.0.1:{server.port}/0"
            runner = _runner()
            with runner:
                runner.run(seed(url))
                rows = runner.run(measure(url, args.ops, args.rounds))
        finally:
            server.stop()
    load = os.getloadavg()[0]
    print(f"{args.rounds} alternating rounds of {args.ops} commands per case; load average {load:.1f} "
          f"on {os.cpu_count()} cores; loop {'uvloop' if _has_uvloop() else 'asyncio'}")
    print(table(rows))
    return 0


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _runner() -> asyncio.Runner:
    if _has_uvloop():
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


if __name__ == "__main__":
    sys.exit(main())
