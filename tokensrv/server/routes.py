"""The route table and thin handlers: parse HTTP, call one oauth/ function, serialise the result."""
from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from aiohttp import web

from tokensrv.errors import InvalidClientMetadata, OAuthError
from tokensrv.oauth import dpop
from tokensrv.oauth.clients.authentication import authenticate
from tokensrv.oauth.clients.metadata import credentials
from tokensrv.oauth.endpoints import device, introspection, par, registration, revocation
from tokensrv.oauth.endpoints.discovery import metadata_bytes
from tokensrv.oauth.endpoints.refresh_cookie import token_with_cookie
from tokensrv.oauth.endpoints.userinfo import access_token
from tokensrv.oauth.endpoints.userinfo import userinfo as get_userinfo
from tokensrv.oauth.own_tokens import read_own_jwt
from tokensrv.server import cors
from tokensrv.server.appkeys import NO_STORE, SETTINGS
from tokensrv.server.request import FORM, authorization, form_params, provider, remote_address
from tokensrv.server.web import cookies, setup_web
from tokensrv.store.connect import STORE_TIMEOUT


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # bytes, not text: aiohttp would look a payload class up for a str and encode it itself
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json",
                        headers=headers)


async def token(request: web.Request) -> web.Response:
    params = await form_params(request)
    result, refresh_cookie = await token_with_cookie(
        provider(request), params, authorization(request), remote_address(request),
        cookies.refresh_token(request), request.headers.get("Origin"), request.headers.getall("DPoP", []))
    response = json_response(result, headers=await with_dpop_nonce(request, NO_STORE))
    if refresh_cookie is not None:  # a first-party browser app asked for it (oauth/endpoints/refresh_cookie.py)
        cookies.set_refresh(request, response, refresh_cookie)
    return response


async def with_dpop_nonce(request: web.Request, headers: dict[str, str]) -> dict[str, str]:
    """RFC 9449 §8.2: where a proof may be sent, the answer offers the nonce to use next."""
    nonce = await dpop.current_nonce(provider(request))
    return headers if nonce is None else {**headers, "DPoP-Nonce": nonce}


async def presented_token(request: web.Request) -> tuple[str, str]:
    """("bearer" or "dpop", the access token) a UserInfo request presents."""
    form_token = None
    if request.method == "POST" and request.content_type == FORM:
        form_token = (await form_params(request)).get("access_token")
    return access_token(authorization(request), form_token)


async def userinfo(request: web.Request) -> web.Response:
    scheme, token = await presented_token(request)
    info = await get_userinfo(provider(request), token, scheme, request.headers.getall("DPoP", []),
                              request.method)
    return json_response(info, headers=NO_STORE)


async def revoke(request: web.Request) -> web.Response:
    params = await form_params(request)
    client = await authenticate(provider(request), params, authorization(request), remote_address(request),
                                endpoint="revocation_endpoint")
    await revocation.revoke(provider(request), client, params)
    return web.Response(status=200, headers=NO_STORE)


async def introspect(request: web.Request) -> web.Response:
    params = await form_params(request)
    client = await authenticate(provider(request), params, authorization(request), remote_address(request),
                                allow_public=False, endpoint="introspection_endpoint")
    return json_response(await introspection.introspect(provider(request), client, params), headers=NO_STORE)


async def pushed_authorization_request(request: web.Request) -> web.Response:
    params = await form_params(request)
    body = await par.push(provider(request), params, authorization(request), remote_address(request),
                          request.headers.getall("DPoP", []))
    return json_response(body, status=201, headers=await with_dpop_nonce(request, NO_STORE))


async def device_authorization(request: web.Request) -> web.Response:
    """RFC 8628 §3.1-§3.2."""
    params = await form_params(request)
    answer = await device.device_authorization(provider(request), params, authorization(request),
                                               remote_address(request))
    return json_response(answer, headers=NO_STORE)


async def metadata_body(request: web.Request) -> registration.Body:
    """RFC 7591 §3.1: the body and its type, read now (oauth/endpoints/registration.py checks them once the token
    is); one over the size limit is refused as metadata, like any other metadata we cannot read."""
    try:
        return registration.Body(request.content_type, await request.read())
    except web.HTTPRequestEntityTooLarge:
        raise InvalidClientMetadata("body too large", description="the metadata is too large") from None


async def register_client(request: web.Request) -> web.Response:
    """RFC 7591 §3: POST /oauth2/register with an initial access token."""
    body = await registration.register(provider(request), authorization(request), await metadata_body(request))
    return json_response(body, status=201, headers=NO_STORE)


async def registered_client(request: web.Request) -> web.Response:
    """RFC 7592 §2: GET, PUT and DELETE at registration_client_uri with the registration token."""
    p, client_id, auth = provider(request), request.match_info["client_id"], authorization(request)
    if request.method == "DELETE":
        await registration.delete(p, client_id, auth)
        return web.Response(status=204, headers=NO_STORE)
    if request.method == "PUT":
        body = await registration.update(p, client_id, auth, await metadata_body(request))
    else:
        body = await registration.read(p, client_id, auth)
    return json_response(body, headers=NO_STORE)


async def named_client(request: web.Request) -> str | None:
    """CORS on token and revocation: the client a request names (form or Basic; None: none, or
    not readable, and then no CORS header)."""
    try:
        return credentials(await form_params(request), authorization(request))[0]
    except OAuthError:
        return None


async def token_client(request: web.Request) -> str | None:
    """CORS on UserInfo: the client its access token was issued to (None: no token of ours)."""
    try:
        claims = read_own_jwt(provider(request), (await presented_token(request))[1])
    except OAuthError:
        return None
    return None if claims is None else str(claims.get("client_id", "")) or None


RESUBSCRIBE_TIMEOUT = 1.0  # seconds /readyz waits for the client-change subscription once the store answers
DISCOVERY_HEADERS = {"Content-Type": "application/json", "Cache-Control": "public, max-age=3600", **cors.PUBLIC}


async def discovery(request: web.Request) -> web.Response:
    # built again only when the claim rules in effect change (discovery.metadata_bytes)
    body = metadata_bytes(request.app[SETTINGS], provider(request).claim_rules.current)
    return web.Response(body=body, headers=DISCOVERY_HEADERS)


@functools.lru_cache(maxsize=8)
def jwks_headers(etag: str, max_age: int) -> dict[str, str]:
    """Built once per key set: every verifier and load balancer polls the JWKS."""
    return {"Content-Type": "application/json", "Cache-Control": f"public, max-age={max_age}", "ETag": etag,
            **cors.PUBLIC}


async def jwks(request: web.Request) -> web.Response:
    ring = provider(request).keys.ring
    headers = jwks_headers(ring.jwks_etag, request.app[SETTINGS].jwks_max_age)
    if ring.jwks_etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    return web.Response(body=ring.jwks_bytes, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when this process can answer a token request: a signing key is loaded, the store
    answers, the client cache follows the store's change announcements (until then a client
    record could be stale), and the claim rules document has been read (until then tokens could
    carry the fallback rules' claims); else 503 with the reasons."""
    p = provider(request)
    reasons = []
    if p.keys.ring.signing is None:
        reasons.append("no usable signing key in the keys folder")
    try:
        await asyncio.wait_for(p.store.ping(), STORE_TIMEOUT)
    except Exception:  # any failure to answer is "unreachable"
        reasons.append("store unreachable")
    cache = p.store.client_cache
    if cache is not None and not cache.live and "store unreachable" not in reasons:
        # the store answers again (a restart, a failover): follow it now, not after the backoff
        cache.retry_now()
        await cache.wait_live(RESUBSCRIBE_TIMEOUT)
    if cache is not None and not cache.live:
        reasons.append("not following client changes")
    if not p.claim_rules.read:
        reasons.append("claim rules not read from the store yet")
    if reasons:
        return json_response({"status": "not ready", "reasons": reasons}, status=503, headers=NO_STORE)
    return json_response({"status": "ready"}, headers=NO_STORE)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/.well-known/oauth-authorization-server", discovery)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_post("/oauth2/token", cors.cross_origin(token, named_client))
    app.router.add_post("/oauth2/revoke", cors.cross_origin(revoke, named_client))
    app.router.add_post("/oauth2/introspect", introspect)
    app.router.add_post(par.PAR_PATH, pushed_authorization_request)
    app.router.add_post("/oauth2/device_authorization", device_authorization)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    cors_userinfo = cors.cross_origin(userinfo, token_client)
    app.router.add_get("/oauth2/userinfo", cors_userinfo)
    app.router.add_post("/oauth2/userinfo", cors_userinfo)
    cors.setup_cors(app, {"/oauth2/token": "POST", "/oauth2/revoke": "POST", "/oauth2/userinfo": "GET, POST"})
    if app[SETTINGS].registration_enabled:  # else 404, like any path we do not serve
        app.router.add_post(registration.REGISTRATION_PATH, register_client)
        for method in ("GET", "PUT", "DELETE"):
            app.router.add_route(method, registration.REGISTRATION_PATH + "/{client_id}", registered_client)
    setup_web(app)  # /oauth2/authorize, /login, /oauth2/logout, /device, /static/
