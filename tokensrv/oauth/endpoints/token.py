"""RFC 6749 §3.2 the token endpoint: authenticate the client, then hand over to its grant."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokensrv.errors import UnsupportedGrantType
from tokensrv.oauth import Provider, ratelimit
from tokensrv.oauth.clients.authentication import authenticate
from tokensrv.oauth.clients.metadata import DEVICE_CODE, GRANT_TYPES, TOKEN_EXCHANGE
from tokensrv.oauth.dpop import token_request_key
from tokensrv.oauth.grants import (
    authorization_code,
    client_credentials,
    device_code,
    password,
    refresh_token,
    token_exchange,
)
from tokensrv.oauth.own_tokens import Issued
from tokensrv.oauth.params import for_log, require
from tokensrv.observability import events
from tokensrv.store import Client


async def token(p: Provider, params: Mapping[str, str], authorization: str | None,
                remote: str, *, client: Client | None = None, dpop: Sequence[str] = ()) -> dict[str, Any]:
    """`client`: already authenticated by the caller (an assertion can be checked only once).
    `dpop`: the request's DPoP headers (RFC 9449 §5): with one, the tokens are bound to its key."""
    grant_type = require(params, "grant_type")
    if grant_type in GRANT_TYPES:  # a name we know, not whatever text the request sent
        p.annotate("oauth.grant_type", grant_type)
    await ratelimit.limit_address(p, remote)
    if client is None:
        client = await authenticate(p, params, authorization, remote)
    await ratelimit.limit_client(p, client.client_id)
    jkt = await token_request_key(p, client, dpop)
    issued = await _grant(p, client, grant_type, params, remote, jkt)
    events.token_issued(grant_type, client.client_id, client.is_public, issued.response, issued.claims)
    return issued.response


async def _grant(p: Provider, client: Client, grant_type: str, params: Mapping[str, str],
                 remote: str, jkt: str | None) -> Issued:
    if grant_type == "authorization_code":
        return await authorization_code.grant(p, client, params, jkt)
    if grant_type == "client_credentials":
        return await client_credentials.grant(p, client, params, jkt)
    if grant_type == "refresh_token":
        return await refresh_token.grant(p, client, params, jkt)
    if grant_type == "password":
        return await password.grant(p, client, params, remote, jkt)
    if grant_type == DEVICE_CODE:  # RFC 8628
        return await device_code.grant(p, client, params, jkt)
    if grant_type == TOKEN_EXCHANGE:  # RFC 8693
        return await token_exchange.grant(p, client, params, jkt)
    raise UnsupportedGrantType(f"grant_type {for_log(grant_type)}")
