"""References in HTTP: a bare aiohttp app serving fixed bytes (for JWKS and discovery), and a bare
aiohttp handler that signs one JWT per POST (the floor for a token endpoint written with aiohttp).

It runs with tokensrv's own worker model (the same SO_REUSEPORT sockets and forked workers, uvloop)
so the comparison isolates what tokensrv does per request, not how it is deployed.
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import time
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web

from tokensrv.keys import KeyFolder, current_key
from tokensrv.oauth.tokens import sign
from tokensrv.server import listen_sockets, run, supervise


def make_app(jwks: bytes, discovery: bytes, cache_control: str, etag: str, keys_dir: Path) -> web.Application:
    jwks_headers = {"Cache-Control": cache_control, "ETag": etag}
    discovery_headers = {"Cache-Control": "public, max-age=3600"}

    async def serve_jwks(request: web.Request) -> web.Response:
        return web.Response(body=jwks, content_type="application/json", headers=jwks_headers)

    async def serve_discovery(request: web.Request) -> web.Response:
        return web.Response(body=discovery, content_type="application/json", headers=discovery_headers)

    signer = SimpleNamespace(keys=SimpleNamespace(ring=SimpleNamespace(signing=current_key(KeyFolder(keys_dir).load()[0]))))

    async def issue(request: web.Request) -> web.Response:
        """No client authentication, no store, no checks: read the form, sign, answer."""
        await request.post()
        now = int(time.time())
        claims = {"iss": "http://127.0.0.1", "sub": "svc", "aud": "svc", "exp": now + 900, "iat": now,
                  "jti": secrets.token_urlsafe(16), "client_id": "svc", "scope": "read"}
        return web.json_response({"access_token": sign(signer, claims, "at+jwt"),  # type: ignore[arg-type]
                                  "token_type": "Bearer", "expires_in": 900})

    app = web.Application()
    app.router.add_post("/oauth2/token", issue)
    app.router.add_get("/.well-known/jwks.json", serve_jwks)
    app.router.add_get("/.well-known/openid-configuration", serve_discovery)
    return app


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
    args = parser.parse_args()
    app = make_app(args.jwks.read_bytes(), args.discovery.read_bytes(), args.cache_control, args.etag,
                   args.keys_dir)

    def worker(sock: socket.socket) -> int:
        try:
            run(serve_on(app, sock))
        except web.GracefulExit:
            pass
        return 0

    return supervise(listen_sockets("127.0.0.1", args.port, args.workers), worker)


if __name__ == "__main__":
    raise SystemExit(main())
