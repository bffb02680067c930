"""`python -m examples.spa`: serve the example single-page app (examples/spa/static/) as plain static
files on its own origin, with oidc-client-ts from examples/spa/node_modules (`npm ci` first).

    python -m examples.spa --issuer http://127.0.0.1:8080 --client-id spa --port 8081
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

HERE = Path(__file__).parent
STATIC = HERE / "static"
LIBRARY = HERE / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.js"


def spa_app(issuer: str, client_id: str, scope: str = "openid profile", library: Path = LIBRARY) -> web.Application:
    """The SPA's static files, its config.json and the oidc-client-ts browser bundle (no CDN)."""
    config = json.dumps({"issuer": issuer.rstrip("/"), "client_id": client_id, "scope": scope})

    def static(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
        async def serve(request: web.Request) -> web.FileResponse:
            return web.FileResponse(STATIC / name)
        return serve

    async def config_json(request: web.Request) -> web.Response:
        return web.Response(text=config, content_type="application/json")

    async def oidc_client(request: web.Request) -> web.FileResponse:
        return web.FileResponse(library, headers={"Content-Type": "text/javascript"})

    app = web.Application()
    app.router.add_get("/", static("index.html"))  # also the redirect URI, after sign-in and sign-out
    for name in ("app.js", "app.css"):
        app.router.add_get("/" + name, static(name))
    app.router.add_get("/config.json", config_json)
    app.router.add_get("/oidc-client-ts.js", oidc_client)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.spa", description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", default="http://127.0.0.1:8080", help="tokensrv's issuer URL")
    parser.add_argument("--client-id", default="spa")
    parser.add_argument("--scope", default="openid profile")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    if not LIBRARY.is_file():
        sys.exit(f"error: {LIBRARY} is missing: run `npm ci` in {HERE} first")
    web.run_app(spa_app(args.issuer, args.client_id, args.scope), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
