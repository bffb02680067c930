"""RFC 9126 pushed authorization requests: the client sends its authorization request to the
server directly (authenticated like at the token endpoint, or by client_id for a public client),
gets a `request_uri` back, and sends the browser to /oauth2/authorize with only `client_id` and
`request_uri`. The parameters never pass through the browser, so they cannot be read or altered
there.

The request is checked exactly as the authorization endpoint checks it (authorize.py), then kept
in Valkey for TOKENSRV_PAR_TTL seconds under the SHA-256 of the client id and the request_uri:
only that client finds it, once (GETDEL).
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..store import PushedRequest
from . import Provider
from .authorize import REQUEST_URI_PREFIX, checked_pushed_request, pushed_request_key
from .client_auth import authenticate


async def push(p: Provider, params: Mapping[str, str], authorization: str | None, remote: str) -> dict[str, Any]:
    """§2.1-§2.2: the checked request stored; {request_uri, expires_in} for the 201 answer."""
    client = await authenticate(p, params, authorization, remote,
                                endpoint="pushed_authorization_request_endpoint")
    request = checked_pushed_request(client, params)
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    ttl = p.settings.par_ttl
    pushed = PushedRequest(request, p.now() + ttl)
    await p.store.put_pushed_request(pushed_request_key(client.client_id, request_uri), pushed, ttl)
    return {"request_uri": request_uri, "expires_in": ttl}
