"""References in HTTP: a bare aiohttp app serving fixed bytes (for JWKS and discovery), and a bare
aiohttp handler that signs one JWT per POST (the floor for a token endpoint written with aiohttp).

`--server` picks the HTTP machinery under that same signing handler, to measure the alternatives to
aiohttp's web framework: `lowlevel` is aiohttp's low-level server (no router, no middleware chain,
no Application), `uvicorn` a raw ASGI callable on uvicorn with httptools (bench-only: it is not a
dependency of tokensrv; `pip install uvicorn httptools`).

It runs with tokensrv's own worker model (the same SO_REUSEPORT sockets and forked workers, uvloop)
so the comparison isolates what tokensrv does per request, not how it is deployed.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from tokensrv.cli.serve import listen_sockets, run, supervise
from tokensrv.keys.folder import KeyFolder
from tokensrv.keys.signing import current_key, jws_signature
from tokensrv.oauth.own_tokens import sign


def make_app(jwks: bytes, discovery: bytes, cache_control: str, etag: str, keys_dir: Path) -> web.Application:
    jwks_headers = {"Cache-Control": cache_control, "ETag": etag}
    discovery_headers = {"Cache-Control": "public, max-age=3600"}

    async def serve_jwks(request: web.Request) -> web.Response:
        return web.Response(body=jwks, content_type="application/json", headers=jwks_headers)

    async def serve_discovery(request: web.Request) -> web.Response:
        return web.Response(body=discovery, content_type="application/json", headers=discovery_headers)

    sign_one = signer(keys_dir)

    async def issue(request: web.Request) -> web.Response:
        """No client authentication, no store, no checks: read the form, sign, answer."""
        await request.post()
        return web.Response(body=sign_one(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/oauth2/token", issue)
    app.router.add_get("/.well-known/jwks.json", serve_jwks)
    app.router.add_get("/.well-known/openid-configuration", serve_discovery)
    return app


def signer(keys_dir: Path) -> Callable[[], bytes]:
    """The one piece of work every floor does per request: a token response with a fresh JWT."""
    signing = current_key(KeyFolder(keys_dir).load()[0])
    ring = SimpleNamespace(keys=SimpleNamespace(ring=SimpleNamespace(signing=signing)),
                           signature=jws_signature)  # what sign() reads of a Provider

    def sign_one() -> bytes:
        now = int(time.time())
        claims = {"iss": "http://127.0.0.1", "sub": "svc", "aud": "svc", "exp": now + 900, "iat": now,
                  "jti": secrets.token_urlsafe(16), "client_id": "svc", "scope": "read"}
        return json.dumps({"access_token": sign(ring, claims, "at+jwt"),  # type: ignore[arg-type]
                           "token_type": "Bearer", "expires_in": 900}).encode()
    return sign_one


async def serve_lowlevel(keys_dir: Path, sock: socket.socket) -> None:
    """The signing handler on aiohttp's low-level server: one callable, no routing or middlewares."""
    sign_one = signer(keys_dir)

    async def handle(request: web.BaseRequest) -> web.Response:
        await request.post()
        return web.Response(body=sign_one(), content_type="application/json")

    server = await asyncio.get_running_loop().create_server(web.Server(handle, access_log=None), sock=sock)
    async with server:
        await server.serve_forever()


async def serve_uvicorn(keys_dir: Path, sock: socket.socket) -> None:
    """The signing handler as a raw ASGI callable on uvicorn + httptools."""
    import uvicorn

    sign_one = signer(keys_dir)
    headers = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        urllib.parse.parse_qsl(body.decode())  # read the form, as the other floors do
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": sign_one()})

    config = uvicorn.Config(app, http="httptools", loop="none", lifespan="off", access_log=False,
                            log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


async def serve_on(app: web.Application, sock: socket.socket) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=True)  # SIGTERM: GracefulExit
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--jwks", type=Path, required=True)
    parser.add_argument("--discovery", type=Path, required=True)
    parser.add_argument("--cache-control", required=True)
    parser.add_argument("--etag", required=True)
    parser.add_argument("--keys-dir", type=Path, required=True)
    parser.add_argument("--server", choices=("aiohttp", "lowlevel", "uvicorn"), default="aiohttp")
    args = parser.parse_args()
    app = make_app(args.jwks.read_bytes(), args.discovery.read_bytes(), args.cache_control, args.etag,
                   args.keys_dir)
    serving: Callable[[socket.socket], Coroutine[Any, Any, None]] = {
        "aiohttp": lambda sock: serve_on(app, sock),
        "lowlevel": lambda sock: serve_lowlevel(args.keys_dir, sock),
        "uvicorn": lambda sock: serve_uvicorn(args.keys_dir, sock),
    }[args.server]

    def worker(sock: socket.socket) -> int:
        with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
            run(serving(sock))
        return 0

    return supervise(listen_sockets("127.0.0.1", args.port, args.workers), worker)


if __name__ == "__main__":
    raise SystemExit(main())
