"""The admin API's route table and handlers: read the caller and the JSON body, call one act of
tokensrv/admin/, audit the change with the caller, answer JSON. Errors are the server's JSON errors:
400 invalid_request (naming the field), 404 not_found, 409 conflict."""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tokensrv.admin import bodies
from tokensrv.admin import operations as admin
from tokensrv.admin.caller import admin_caller
from tokensrv.errors import InvalidRequest, NotFound, OAuthError
from tokensrv.oauth.clients.metadata import ADMIN_SCOPE
from tokensrv.oauth.endpoints.discovery import PATHS
from tokensrv.observability.logs import audit
from tokensrv.server.appkeys import NO_STORE, SETTINGS
from tokensrv.server.request import authorization, provider, remote_address
from tokensrv.store import Client
from tokensrv.verify.json_limits import JSONRejected, parse_object

MAX_BODY = 64 * 1024  # as the public listener's (server/app.py), and registration's metadata
MAX_DEPTH = 8  # a client's JWKS is the deepest body: 4 levels
JSON = "application/json"
CALLER = web.RequestKey("admin_caller", Client)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Conflict(OAuthError):
    error, status, description = "conflict", 409, "it exists already"


def answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=JSON, headers=NO_STORE)


def done() -> web.Response:
    return web.Response(status=204, headers=NO_STORE)


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object a request carries, bounded in size and depth (as registration reads one)."""
    if request.content_type != JSON:
        raise InvalidRequest("wrong content type", description=f"the body must be {JSON}")
    try:
        return parse_object(await request.read(), max_bytes=MAX_BODY, max_depth=MAX_DEPTH)
    except JSONRejected as exc:  # fixed text naming the reason only
        raise InvalidRequest(f"body refused: {exc}", description=f"the body must be a JSON object: {exc}") from None


@web.middleware
async def caller_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route but the index needs an admin token; AdminError -> 400, 404 or 409."""
    if request.path != "/admin/":
        request[CALLER] = await admin_caller(provider(request), authorization(request), remote_address(request))
    try:
        return await handler(request)
    except admin.AdminError as exc:
        kind = {admin.Missing: NotFound, admin.Exists: Conflict}.get(type(exc), InvalidRequest)
        text = str(exc)[:300]
        raise kind(text, description=text) from None


def audited(request: web.Request, event: str, **fields: Any) -> None:
    audit(event, caller=request[CALLER].client_id, via="api", **fields)


async def index(request: web.Request) -> web.Response:
    issuer = request.app[SETTINGS].issuer
    return answer({"issuer": issuer, "token_endpoint": issuer + PATHS["token_endpoint"], "scope": ADMIN_SCOPE})


# ---- clients ----

async def list_clients(request: web.Request) -> web.Response:
    return answer([admin.client_view(c) for c in await provider(request).store.clients.list_clients()])


async def add_client(request: web.Request) -> web.Response:
    client_id, metadata = bodies.new_client(await body_of(request))
    result = await admin.add_client(provider(request), client_id, metadata)
    audited(request, "admin.client_added", client_id=client_id, admin=metadata.admin)
    return answer(result, 201)


async def show_client(request: web.Request) -> web.Response:
    return answer(admin.client_view(await admin.get_client(provider(request), request.match_info["id"])))


async def update_client(request: web.Request) -> web.Response:
    client_id, change = request.match_info["id"], bodies.client_change(await body_of(request))
    result = await admin.update_client(provider(request), client_id, change)
    audited(request, "admin.client_updated", client_id=client_id, changed=change.fields())  # names, never values
    return answer(result)


async def remove_client(request: web.Request) -> web.Response:
    await admin.remove_client(provider(request), request.match_info["id"])
    audited(request, "admin.client_removed", client_id=request.match_info["id"])
    return done()


async def rotate_secret(request: web.Request) -> web.Response:
    overlap = bodies.only(await body_of(request), "overlap", required=False) if request.can_read_body else None
    overlap = 0 if overlap is None else overlap  # none: the old secret stops at once
    if not isinstance(overlap, int) or isinstance(overlap, bool):
        raise admin.AdminError("overlap must be a whole number of seconds")
    result = await admin.rotate_secret(provider(request), request.match_info["id"], overlap)
    audited(request, "admin.client_secret_rotated", client_id=request.match_info["id"], overlap=overlap)
    return answer(result)


def setup_client_routes(app: web.Application) -> None:
    app.router.add_get("/admin/", index)
    app.router.add_get("/admin/clients", list_clients)
    app.router.add_post("/admin/clients", add_client)
    app.router.add_get("/admin/clients/{id}", show_client)
    app.router.add_patch("/admin/clients/{id}", update_client)
    app.router.add_delete("/admin/clients/{id}", remove_client)
    app.router.add_post("/admin/clients/{id}/secret", rotate_secret)
