"""RFC 9126 pushed authorization requests: the client sends its authorization request to the
server directly (authenticated like at the token endpoint, or by client_id for a public client),
gets a `request_uri` back, and sends the browser to /oauth2/authorize with only `client_id` and
`request_uri`. The parameters never pass through the browser, so they cannot be read or altered
there.

The request is checked exactly as the authorization endpoint checks it (oauth/browser/authorize.py), then kept
in Valkey for TOKENSRV_PAR_TTL seconds under the SHA-256 of the client id and the request_uri:
only that client finds it, once (GETDEL).

With a DPoP header (RFC 9449 §10.1) the proof is checked as at the token endpoint, and its key
becomes the request's `dpop_jkt`: the code is then redeemed only with a proof by that key, as
after a `dpop_jkt` sent to the authorization endpoint.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.browser.authorize import REQUEST_URI_PREFIX, checked_pushed_request, pushed_request_key
from tokensrv.oauth.clients.authentication import authenticate
from tokensrv.oauth.dpop import proven_key
from tokensrv.oauth.endpoints.discovery import PATHS
from tokensrv.store import PushedRequest

PAR_PATH = PATHS["pushed_authorization_request_endpoint"]


async def push(p: Provider, params: Mapping[str, str], authorization: str | None, remote: str,
               dpop: Sequence[str] = ()) -> dict[str, Any]:
    """§2.1-§2.2: the checked request stored; {request_uri, expires_in} for the 201 answer.
    `dpop`: the request's DPoP headers."""
    client = await authenticate(p, params, authorization, remote,
                                endpoint="pushed_authorization_request_endpoint")
    if dpop:
        params = _bound_to(params, await proven_key(p, dpop, PAR_PATH))
    request = checked_pushed_request(client, params)
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    ttl = p.settings.par_ttl
    pushed = PushedRequest(request, p.now() + ttl)
    await p.store.sessions.put_pushed_request(pushed_request_key(client.client_id, request_uri), pushed, ttl)
    return {"request_uri": request_uri, "expires_in": ttl}


def _bound_to(params: Mapping[str, str], jkt: str) -> dict[str, str]:
    """RFC 9449 §10.1: the proof's key is the request's dpop_jkt; a dpop_jkt naming another key
    makes the request contradict itself."""
    named = params.get("dpop_jkt")
    if named is not None and named != jkt:
        raise InvalidRequest("dpop_jkt is not the DPoP proof's key",
                             description="dpop_jkt must be the thumbprint of the DPoP proof's key")
    return {**params, "dpop_jkt": jkt}
