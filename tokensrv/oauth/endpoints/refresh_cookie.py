"""Refresh tokens kept in an HttpOnly cookie, for first-party browser applications.

Script on the page never sees the refresh token: a first-party client sends
`refresh_token_cookie=true` with its token request and the refresh token goes into a cookie
(SameSite=Strict, path /oauth2/token) instead of the body. A refresh_token grant without the
`refresh_token` parameter then uses and rotates the cookie. Because a browser attaches the cookie
by itself, that request must come from one of the client's own origins (the `Origin` header,
checked against the origins of its registered redirect URIs): a CSRF defence on top of SameSite.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokensrv.errors import InvalidRequest, UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.authentication import authenticate
from tokensrv.oauth.clients.origins import origin_of
from tokensrv.oauth.endpoints.token import token
from tokensrv.store import Client

PARAM = "refresh_token_cookie"


def client_origins(client: Client) -> set[str]:
    return {o for o in map(origin_of, client.redirect_uris) if o is not None}


async def token_with_cookie(p: Provider, params: Mapping[str, str], authorization: str | None,
                            remote: str, cookie: str | None, origin: str | None,
                            dpop: Sequence[str] = ()) -> tuple[dict[str, Any], str | None]:
    """The token response, and the refresh token to put in the cookie (None: leave it alone)."""
    wanted = params.get(PARAM)
    if wanted not in (None, "true", "false"):
        raise InvalidRequest(f"{PARAM}={wanted!r}", description=f"{PARAM} must be true or false")
    from_cookie = params.get("grant_type") == "refresh_token" and "refresh_token" not in params
    if wanted != "true" and not (from_cookie and cookie):
        return await token(p, params, authorization, remote, dpop=dpop), None
    client = await authenticate(p, params, authorization, remote)
    if not client.first_party:
        raise UnauthorizedClient(f"{PARAM} for third-party client {client.client_id!r}",
                                 description="only first-party clients may keep refresh tokens in a cookie")
    if from_cookie and cookie:
        if origin is None or origin not in client_origins(client):
            raise InvalidRequest(f"Origin {origin!r} for the refresh cookie",
                                 description="the Origin header is missing or not one of the client's")
        params = {**params, "refresh_token": cookie}
    response = await token(p, params, authorization, remote, client=client, dpop=dpop)
    return response, response.pop("refresh_token", None)
