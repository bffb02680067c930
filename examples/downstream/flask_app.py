"""orders, a Flask service protected by tokensrv.verify: no call to tokensrv per request; a
background thread keeps the keys and the revocation mirror current.

    export TOKENSRV_ISSUER=http://127.0.0.1:8080          # tokensrv's issuer (the default)
    export TOKENSRV_REDIS_URL=unix://$PWD/.tokensrv/valkey.sock  # tokensrv's store: revocations
    .venv/bin/flask --app examples.downstream.flask_app run --port 8092

GET /orders (scope orders:read) lists the caller's orders; POST /orders (scope orders:write) adds
one. POST /backchannel-logout is the OIDC back-channel logout receiver.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, current_app, request

from tokensrv.verify.flask import TokenAuth, claims_of, logout_view, require
from tokensrv.verify.sync import SyncVerifier

log = logging.getLogger("orders")
orders_of: dict[str, list[dict[str, Any]]] = {}  # sub -> orders, in memory: this is an example


def create_app(verifier: SyncVerifier | None = None) -> Flask:
    app = Flask("orders")
    TokenAuth(app, verifier or SyncVerifier(
        os.environ.get("TOKENSRV_ISSUER", "http://127.0.0.1:8080"),
        os.environ.get("ORDERS_AUDIENCE", "orders"),
        os.environ.get("TOKENSRV_REDIS_URL") or None), realm="orders")
    app.config["ENDED_SESSIONS"] = []

    @app.get("/orders")
    @require(scopes=["orders:read"])
    def list_orders() -> dict[str, Any]:
        return {"orders": orders_of.get(claims_of()["sub"], [])}

    @app.post("/orders")
    @require(scopes=["orders:write"])
    def create_order() -> tuple[dict[str, Any], int]:
        body = request.get_json(silent=True)
        item = body.get("item") if isinstance(body, dict) else None
        quantity = body.get("quantity") if isinstance(body, dict) else None
        if not isinstance(item, str) or not 0 < len(item) <= 100 or type(quantity) is not int \
                or not 0 < quantity <= 1000:
            return {"error": "invalid_request", "error_description": 'send {"item": text, "quantity": 1-1000}'}, 400
        order = {"item": item, "quantity": quantity}
        orders_of.setdefault(claims_of()["sub"], []).append(order)
        return order, 201

    def end_session(claims: dict[str, Any]) -> None:  # tokensrv signed this user's session out
        log.info("session %s of %s ended", claims.get("sid"), claims.get("sub"))
        current_app.config["ENDED_SESSIONS"].append(claims.get("sid") or claims["sub"])

    app.add_url_rule("/backchannel-logout", view_func=logout_view(end_session), methods=["POST"])
    return app
