"""orders: a downstream service protected by tokensrv.verify, with no call to tokensrv per request.

    python -m examples.orders --issuer http://127.0.0.1:8080 --port 8090 --redis-url redis://...

GET /orders (scope orders:read) lists the caller's orders; POST /orders (scope orders:write) adds
one from JSON {"item": str, "quantity": int}. POST /backchannel-logout is the OIDC back-channel
logout receiver (the sessions it ended are in app[ENDED_SESSIONS]). /healthz, /readyz (the
verifier's keys loaded and its revocation mirror connected) and /metrics (the verifier's, among
them `tokensrv_verifier_issuer_requests_total`: every request this service made to tokensrv).
Orders live in memory: this is an example.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tokensrv.verify import TokenVerifier
from tokensrv.verify.json_limits import JSONRejected, parse
from tokensrv.verify.middleware import VERIFIER, claims_of, logout_receiver, require, setup

ORDERS = web.AppKey("orders", dict[str, list[dict[str, Any]]])  # sub -> orders, in memory
REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
ENDED_SESSIONS = web.AppKey("ended_sessions", list[str])  # what back-channel logouts ended, in order
MAX_BODY = 4096  # bytes of an order: {"item": up to 100 characters, "quantity": n}


@require(scopes=["orders:read"])
async def list_orders(request: web.Request) -> web.Response:
    sub = claims_of(request)["sub"]
    return web.json_response({"orders": request.app[ORDERS].get(sub, [])})


@require(scopes=["orders:write"])
async def create_order(request: web.Request) -> web.Response:
    try:  # the bounded parser: a body of 1000 nested arrays is a bad request, not a RecursionError
        body = parse(await request.read(), max_bytes=MAX_BODY)
    except JSONRejected:
        body = None
    order = new_order(body)
    if order is None:
        return web.json_response({"error": "invalid_request",
                                  "error_description": 'send {"item": text, "quantity": 1-1000}'}, status=400)
    request.app[ORDERS].setdefault(claims_of(request)["sub"], []).append(order)
    return web.json_response(order, status=201)


def new_order(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    item, quantity = body.get("item"), body.get("quantity")
    if not isinstance(item, str) or not 0 < len(item) <= 100:
        return None
    if type(quantity) is not int or not 0 < quantity <= 1000:
        return None
    return {"id": uuid.uuid4().hex, "item": item, "quantity": quantity, "created_at": int(time.time())}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    verifier = request.app[VERIFIER]
    reasons = []
    if not verifier.keys.loaded:
        reasons.append("the issuer's keys are not loaded")
    if verifier.mirror is not None and not verifier.mirror.connected:
        reasons.append("the revocation mirror is not connected")
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[REGISTRY]),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(verifier: TokenVerifier, registry: CollectorRegistry) -> web.Application:
    """The service; the verifier starts and stops with it (pass it the same `registry`)."""
    app = web.Application()
    setup(app, verifier, realm="orders")
    app[ORDERS] = {}
    app[REGISTRY] = registry

    async def verifier_ctx(app: web.Application) -> AsyncIterator[None]:
        await verifier.start()
        yield
        await verifier.close()

    async def end_session(claims: dict[str, Any]) -> None:  # tokensrv signed this user's session out
        app[ENDED_SESSIONS].append(claims.get("sid") or claims["sub"])

    app[ENDED_SESSIONS] = []
    app.cleanup_ctx.append(verifier_ctx)
    app.router.add_post("/backchannel-logout", logout_receiver(end_session))
    app.router.add_get("/orders", list_orders)
    app.router.add_post("/orders", create_order)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="orders", description="an example service protected by tokensrv.verify")
    parser.add_argument("--issuer", default=env("ORDERS_ISSUER", "http://127.0.0.1:8080"),
                        help="tokensrv's issuer URL, exactly as in its discovery document")
    parser.add_argument("--audience", default=env("ORDERS_AUDIENCE", "orders"))
    parser.add_argument("--host", default=env("ORDERS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("ORDERS_PORT", "8090")))
    parser.add_argument("--redis-url", default=env("ORDERS_REDIS_URL") or None,
                        help="tokensrv's store, to follow its revocation feed")
    parser.add_argument("--jwks-uri", default=env("ORDERS_JWKS_URI") or None,
                        help="fetch the keys here instead of where discovery says (e.g. a container-network name)")
    parser.add_argument("--algorithm", action="append", dest="algorithms",
                        help="an accepted signing algorithm (repeatable; default RS256)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = CollectorRegistry()
    verifier = TokenVerifier(args.issuer, args.audience, args.redis_url, jwks_uri=args.jwks_uri,
                             algorithms=args.algorithms or ("RS256",), registry=registry)
    print(f"orders on http://{args.host}:{args.port} verifies tokens of {args.issuer} "
          f"(audience {args.audience}; revocations {'followed' if args.redis_url else 'not followed'})",
          flush=True)
    web.run_app(create_app(verifier, registry), host=args.host, port=args.port, print=None,
                access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
