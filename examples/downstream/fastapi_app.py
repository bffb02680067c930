"""orders, a FastAPI service protected by tokensrv.verify: no call to tokensrv per request.

    export TOKENSRV_ISSUER=http://127.0.0.1:8080          # tokensrv's issuer (the default)
    export TOKENSRV_REDIS_URL=unix://$PWD/.tokensrv/valkey.sock  # tokensrv's store: revocations
    .venv/bin/python -m examples.downstream.fastapi_app    # http://127.0.0.1:8091

GET /orders (scope orders:read) lists the caller's orders; POST /orders (scope orders:write) adds
one. POST /backchannel-logout is the OIDC back-channel logout receiver.
"""
# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and those
# naming `auth`, a local of create_app, cannot be evaluated later from the module's globals.
import logging
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from tokensrv.verify.fastapi import TokenAuth

log = logging.getLogger("orders")
Claims = dict[str, Any]


class Order(BaseModel):
    item: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=1000)


def create_app(auth: TokenAuth | None = None) -> FastAPI:
    auth = auth or TokenAuth(issuer=os.environ.get("TOKENSRV_ISSUER", "http://127.0.0.1:8080"),
                             audience=os.environ.get("ORDERS_AUDIENCE", "orders"),
                             redis_url=os.environ.get("TOKENSRV_REDIS_URL") or None, realm="orders")
    app = FastAPI(title="orders", lifespan=auth.lifespan)
    app.state.orders = {}  # sub -> orders, in memory: this is an example
    app.state.ended_sessions = []

    @app.get("/orders")
    async def list_orders(request: Request,
                          claims: Annotated[Claims, Depends(auth.require(scopes=["orders:read"]))]) -> Claims:
        return {"orders": request.app.state.orders.get(claims["sub"], [])}

    @app.post("/orders", status_code=201)
    async def create_order(request: Request, order: Order,
                           claims: Annotated[Claims, Depends(auth.require(scopes=["orders:write"]))]) -> Order:
        request.app.state.orders.setdefault(claims["sub"], []).append(order.model_dump())
        return order

    async def end_session(claims: Claims) -> None:  # tokensrv signed this user's session out
        log.info("session %s of %s ended", claims.get("sid"), claims.get("sub"))
        app.state.ended_sessions.append(claims.get("sid") or claims["sub"])

    app.add_route("/backchannel-logout", auth.logout_endpoint(end_session), methods=["POST"])
    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("ORDERS_PORT", "8091")))
