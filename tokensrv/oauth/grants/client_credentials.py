"""RFC 6749 §4.4: the client_credentials grant. The token speaks for the client itself (RFC 9068 §2.2:
`sub` is the client id)."""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.errors import UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.own_tokens import Issued, Subject, access_claims, issue_access, new_jti
from tokensrv.oauth.scopes import grant_scope
from tokensrv.store import Client


async def grant(p: Provider, client: Client, params: Mapping[str, str], jkt: str | None = None) -> Issued:
    if client.is_public or "client_credentials" not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use client_credentials")
    scope = grant_scope(params.get("scope"), client.scopes)
    now = p.now()
    claims = access_claims(p, client, Subject(client.client_id), scope, new_jti(), now, jkt)
    return issue_access(p, claims, scope, jkt)
