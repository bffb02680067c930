"""`tokensrv serve`: check the settings and the store, make sure a signing key exists, listen."""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import PROVIDER, create_app, open_redis
from .config import Settings, redact_url
from .embedded import EmbeddedValkey

log = logging.getLogger("tokensrv")


class ServeError(Exception):
    """Why the server cannot start: one line."""


def serve(args: argparse.Namespace) -> int:
    from .cli import settings_from
    from .logs import setup_logging

    embedded = None
    if args.embedded_store:
        settings_from(args)  # bad settings are reported before anything starts
        embedded = EmbeddedValkey(Path(args.embedded_store))
        try:
            args.redis_url = embedded.start()
        except (RuntimeError, FileNotFoundError) as exc:
            print(f"tokensrv: error: embedded store: {exc}", file=sys.stderr)
            return 1
    try:
        settings = settings_from(args)
        setup_logging(settings.log_format)
        asyncio.run(_serve(settings, embedded))
        return 0
    except ServeError as exc:
        print(f"tokensrv: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()


async def _check_store(settings: Settings) -> None:
    redis = open_redis(settings.redis_url)
    try:
        await redis.ping()
    except Exception as exc:
        raise ServeError(f"TOKENSRV_REDIS_URL: cannot reach the store at {redact_url(settings.redis_url)} "
                         f"({type(exc).__name__})") from None
    finally:
        await redis.aclose()


async def _serve(settings: Settings, embedded: EmbeddedValkey | None) -> None:
    await _check_store(settings)
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    keys = app[PROVIDER].keys
    if keys.ring.signing is None:
        await keys.tick()  # a new deployment: create the first keys (under the rotation lock)
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=settings.workers > 1)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"cannot listen on {settings.host}:{settings.port}: the address is already "
                             "in use (set TOKENSRV_PORT or --port)") from None
        raise ServeError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    announce(settings, embedded)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


def announce(settings: Settings, embedded: EmbeddedValkey | None) -> None:
    store = f"embedded Valkey ({embedded.data_dir})" if embedded else redact_url(settings.redis_url)
    env = "" if not embedded else f"export TOKENSRV_REDIS_URL={embedded.url}\n  "
    print(f"""tokensrv is serving {settings.issuer}
  discovery: {settings.issuer}/.well-known/openid-configuration
  store:     {store}

Try it (in another terminal, from this folder):
  {env}.venv/bin/tokensrv client add --id demo --grant-type client_credentials --scope read
  curl -s -u demo:SECRET -d grant_type=client_credentials {settings.issuer}/oauth2/token

Ctrl-C stops the server{' and its store' if embedded else ''}.""", flush=True)

