"""`tokensrv serve`: check the settings and the store, make sure a signing key exists, listen.

With TOKENSRV_WORKERS=N (N > 1) the parent checks everything once, opens N listening sockets on
the same port with SO_REUSEPORT (the kernel spreads connections across them), forks one worker
process per socket and supervises them: SIGTERM/SIGINT are forwarded, and a worker that dies
stops the whole server (status 1) so the service manager restarts it as it would a single process.
Only the parent owns the embedded Valkey. Each worker runs the key-rotation schedule; the Redis
lock makes exactly one of them perform each step.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from tokensrv.cli.console import settings_from
from tokensrv.cli.embedded import EmbeddedValkey, _die_with_parent
from tokensrv.cli.parsing import Commands, add_command
from tokensrv.config import SETTINGS, Settings, env_name, redact_url
from tokensrv.passwords import stop_helpers
from tokensrv.server.tracing import TracingConfig, TracingError, from_environment
from tokensrv.store.connect import open_redis
from tokensrv.store.server_version import store_version_problem

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("tokensrv")
T = TypeVar("T")
BACKLOG = 1024  # per worker socket: bursts of new connections queue here while the worker is busy
WAIT_INTERVAL = 0.2  # seconds between checks for exited workers (and the shutdown latency it adds)


class ServeError(Exception):
    """Why the server cannot start: one line."""


def add_parser(commands: Commands[Any]) -> None:
    serve = add_command(commands, "serve", "run the server")
    # each means what its setting does (config/)
    for name in ("host", "port", "issuer", "workers", "admin_host", "admin_port"):
        serve.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"{SETTINGS[name].doc} ({env_name(name)})")
    serve.add_argument("--embedded-store", metavar="DIR",
                       help="start the embedded Valkey with its data in DIR (what `make run` does)")
    serve.add_argument("--apply", metavar="FILE", help="apply this declared configuration (as `tokensrv apply "
                       "-f FILE`) once the store is up, before listening (`make run APPLY=FILE`)")


def serve(args: argparse.Namespace) -> int:
    """Every line this writes is in the log format: JSON lines by default, so a container's log
    shipper never meets a line it cannot parse (the banner is one JSON event; see announce())."""
    from tokensrv.observability.logs import error_line, log_uncaught, setup_logging

    settings = settings_from(args)  # bad settings are reported (cli.main) before anything starts
    setup_logging(settings.log_format, getattr(logging, settings.log_level.upper()))
    log_uncaught()
    embedded = None
    try:
        try:  # read once, here: a tracing setup that cannot work is a one-line error at start
            tracing = from_environment()
        except TracingError as exc:
            raise ServeError(str(exc)) from None
        if args.embedded_store:
            embedded = EmbeddedValkey(Path(args.embedded_store))
            try:
                args.redis_url = embedded.start()
            except (RuntimeError, FileNotFoundError) as exc:
                raise ServeError(f"embedded store: {exc}") from None
            settings = settings_from(args)
        if args.apply:
            _apply_first(settings, args.apply)
        if settings.workers > 1:
            return _serve_workers(settings, embedded, getattr(args, "own_metrics_dir", None), tracing)
        run(_serve(settings, embedded, tracing=tracing))
        return 0
    except ServeError as exc:
        logging.shutdown()  # what was logged before comes first
        print(error_line(str(exc), settings.log_format), file=sys.stderr, flush=True)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()


def _apply_first(settings: Settings, path: str) -> None:
    """`serve --apply FILE`: the file applied before the server listens; a bad file stops it."""
    from tokensrv.cli.apply import apply_path

    if apply_path(settings, path, text=settings.log_format == "text", serving=True) != 0:
        raise ServeError(f"--apply {path}: not applied (see above)")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (the `fast` extra): a faster loop, same semantics."""
    with asyncio.Runner(loop_factory=_uvloop_factory()) as runner:
        return runner.run(main)


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's own loop). The server does not run inside the
    `except ImportError`: every exception raised in it would be chained to the missing uvloop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _check_store(settings: Settings) -> None:
    redis = open_redis(settings.redis_url)
    try:
        await redis.ping()
        too_old = await store_version_problem(redis)
    except Exception as exc:  # whatever it is, the store cannot be used
        raise ServeError(f"TOKENSRV_REDIS_URL: cannot reach the store at {redact_url(settings.redis_url)} "
                         f"({type(exc).__name__})") from None
    finally:
        await redis.aclose()
    if too_old:
        raise ServeError(f"TOKENSRV_REDIS_URL: {too_old} ({redact_url(settings.redis_url)})")


async def _serve(settings: Settings, embedded: EmbeddedValkey | None,
                 sock: socket.socket | None = None, tracing: TracingConfig | None = None,
                 admin_sock: socket.socket | None = None) -> None:
    """One server process: on its own TCP site, or (a worker) on a socket the parent opened.
    With `tracing`, its own TracerProvider (a worker's made after the fork), flushed at the end."""
    # first of all: a SIGTERM that arrives while this process starts (the supervisor stopping
    # right after forking it) ends in the same clean shutdown as one that arrives later
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tracer_provider = tracing.start() if tracing is not None else None
    try:
        await _serve_app(settings, embedded, sock, stop, tracer_provider, admin_sock)
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()  # sends the spans still queued (it waits for the exporter)


async def _serve_app(settings: Settings, embedded: EmbeddedValkey | None, sock: socket.socket | None,
                     stop: asyncio.Event, tracer_provider: TracerProvider | None,
                     admin_sock: socket.socket | None = None) -> None:
    # imported here, not at the top: every `tokensrv` command builds this module's parser
    from tokensrv.server.admin.app import AdminListenError
    from tokensrv.server.app import PROVIDER, create_app
    from tokensrv.server.protocol import Runner

    if sock is None:
        await _check_store(settings)
    app = create_app(settings, tracer_provider=tracer_provider, admin_socket=admin_sock)
    # access_log=None: server/observe.py writes one structured line per request instead.
    # shutdown_timeout: on SIGTERM the listening socket closes first, then in-flight requests get
    # this long to finish (aiohttp's cleanup waits for them) before their connections are closed
    # Runner (server/protocol.py): each request's head must arrive within TOKENSRV_HEADER_TIMEOUT,
    # and what aiohttp's parser refuses is answered in JSON
    runner = Runner(app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout,
                    header_timeout=settings.header_timeout)
    try:
        await runner.setup()  # the admin API's listener starts here (server/admin/app.py)
    except AdminListenError as exc:
        await runner.cleanup()
        raise ServeError(str(exc)) from None
    provider = app[PROVIDER]
    if provider.keys.ring.signing is None:
        await provider.keys.tick()  # a new deployment: create the first keys (under the rotation lock)
    site: web.BaseSite = web.SockSite(runner, sock) if sock else web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise _listen_error(settings.host, settings.port, exc) from None
    if sock is None:
        announce(settings, embedded)
    else:
        log.info("worker serving requests")
    await stop.wait()
    log.info("shutting down: finishing in-flight requests (up to %s s)", settings.shutdown_timeout)
    await runner.cleanup()  # closes the argon2 pool: its worker processes have exited
    stop_helpers()  # and their parent, the forkserver: this process leaves no child behind


def _admin_listen_error(host: str, port: int, exc: OSError) -> ServeError:
    from tokensrv.server.admin.app import admin_listen_error

    return ServeError(str(admin_listen_error(host, port, exc)))


def _listen_error(host: str, port: int, exc: OSError) -> ServeError:
    if exc.errno == errno.EADDRINUSE:
        return ServeError(f"cannot listen on {host}:{port}: the address is already "
                          "in use (set TOKENSRV_PORT or --port)")
    return ServeError(f"cannot listen on {host}:{port}: {exc.strerror}")


# ---- several worker processes ----

def _serve_workers(settings: Settings, embedded: EmbeddedValkey | None,
                   own_metrics_dir: str | None = None, tracing: TracingConfig | None = None) -> int:
    try:
        run(_prepare(settings))
        sockets = listen_sockets(settings.host, settings.port, settings.workers)
        # the admin API's: one per worker too, shared the same way (each worker keeps its own)
        admin = listen_sockets(settings.admin_host, settings.admin_port, settings.workers, _admin_listen_error) \
            if settings.admin_port else []
        pairs = dict(zip(map(id, sockets), admin, strict=False))
        announce(settings, embedded)
        log.info("starting %d worker processes", settings.workers)
        return supervise(sockets, lambda sock: _run_worker(settings, sock, tracing, pairs.get(id(sock)), admin),
                         admin)
    finally:
        if own_metrics_dir:  # made by cli.main for this run: nobody reads it after us
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


async def _prepare(settings: Settings) -> None:
    """What one process checks or does before the workers start: the store, the first keys."""
    from tokensrv.keys.manager import KeyManager  # as in _serve_app
    from tokensrv.store.redis import RedisStore

    await _check_store(settings)
    redis = open_redis(settings.redis_url)
    try:
        keys = KeyManager(settings, RedisStore(redis).locks, lambda: int(time.time()))
        await keys.reload(force=True)
        if keys.ring.signing is None:
            await keys.tick()
    finally:
        await redis.aclose()


def _run_worker(settings: Settings, sock: socket.socket, tracing: TracingConfig | None = None,
                admin_sock: socket.socket | None = None, admin: Sequence[socket.socket] = ()) -> int:
    for other in admin:
        if other is not admin_sock:
            other.close()  # the other workers' admin sockets, as _worker_main closes their public ones
    run(_serve(settings, None, sock, tracing, admin_sock))
    return 0


def listen_sockets(host: str, port: int, count: int,
                   error: Callable[[str, int, OSError], Exception] | None = None) -> list[socket.socket]:
    """`count` listening sockets sharing host:port through SO_REUSEPORT (Linux balances them).

    A probe binds first without SO_REUSEPORT: another server sharing the port through
    SO_REUSEPORT would otherwise be joined silently instead of reported as "in use".
    """
    sockets: list[socket.socket] = []
    try:
        family, address = _address(host, port)
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(BACKLOG)  # connections queue from now on, before the worker is up
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise (error or _listen_error)(host, port, exc) from None
    return sockets


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """The first address `host` resolves to ("" and 0.0.0.0: every IPv4 interface)."""
    found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = found[0]
    return family, address


def supervise(sockets: Sequence[socket.socket], worker: Callable[[socket.socket], int],
              more: Sequence[socket.socket] = ()) -> int:
    """Fork one worker per socket, forward SIGTERM/SIGINT, wait for all. Returns the exit status.
    `more`: other sockets the workers were given (the admin API's), closed here too once forked."""
    children: dict[int, int] = {}
    for index, sock in enumerate(sockets):
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            _worker_main(index, sock, sockets, worker)
        children[pid] = index
    for sock in (*sockets, *more):
        sock.close()  # each worker holds its own: a dead worker's socket leaves the group

    stopping = False

    def stop_all(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    status = 0
    while children:
        # waitpid on our workers only: os.wait() could reap the embedded store, which Popen owns
        for pid, index in list(children.items()):
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
            del children[pid]
            _forget_metrics_of(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                log.error("worker %d (pid %d) exited with status %d: stopping the server", index, pid, code)
                status = 1
                stop_all()
            elif code not in (0, -signal.SIGTERM):  # a worker still starting dies of the signal itself
                log.warning("worker %d (pid %d) exited with status %d while stopping", index, pid, code)
                status = 1
        if children:
            time.sleep(WAIT_INTERVAL)
    return status


def _forget_metrics_of(pid: int) -> None:
    """A dead worker's live gauges (in-flight requests, argon2 queue) must stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _worker_main(index: int, sock: socket.socket, sockets: Sequence[socket.socket],
                 worker: Callable[[socket.socket], int]) -> None:
    code = 1
    try:
        _die_with_parent()  # a parent killed with SIGKILL takes its workers along
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)  # until the worker's loop installs its own
        for other in sockets:
            if other is not sock:
                other.close()
        code = worker(sock)
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        os._exit(code)


def announce(settings: Settings, embedded: EmbeddedValkey | None) -> None:
    """Say where the server listens: one log event in JSON mode (a container's log shipper parses
    every line), a banner with a copy-paste example for a person otherwise (`make run` uses text)."""
    store = f"embedded Valkey ({embedded.data_dir})" if embedded else redact_url(settings.redis_url)
    discovery = f"{settings.issuer}/.well-known/openid-configuration"
    if settings.log_format == "json":
        log.info("serving", extra={"fields": {"issuer": settings.issuer, "discovery": discovery, "store": store,
                                              "workers": settings.workers}})
        return
    env = "" if not embedded else f"export TOKENSRV_REDIS_URL={embedded.url}\n  "
    workers = "" if settings.workers == 1 else f" with {settings.workers} worker processes"
    print(f"""tokensrv is serving {settings.issuer}{workers}
  discovery: {discovery}
  store:     {store}

Try it (in another terminal, from this folder):
  {env}.venv/bin/tokensrv client add --id demo --grant-type client_credentials --scope read
  curl -s -u demo:SECRET -d grant_type=client_credentials {settings.issuer}/oauth2/token

Ctrl-C stops the server{' and its store' if embedded else ''}.""", flush=True)
