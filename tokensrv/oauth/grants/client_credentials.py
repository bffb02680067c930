"""RFC 6749 §4.4: the client_credentials grant. The token speaks for the client itself (RFC 9068 §2.2:
`sub` is the client id).

The admin API's scope, tokensrv:admin, is granted here only: to a client an operator marked admin,
only when asked for, and alone, in a token whose audience is the admin API (`<issuer>/admin`), so
that it is useless at a resource server and no resource server's token is an admin token."""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.errors import InvalidScope, UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.metadata import ADMIN_SCOPE
from tokensrv.oauth.own_tokens import Issued, Subject, access_claims, issue_access, new_jti
from tokensrv.oauth.scopes import grant_scope, parse_scope
from tokensrv.store import Client

ADMIN_AUDIENCE_PATH = "/admin"  # the admin tokens' aud: the issuer and this


async def grant(p: Provider, client: Client, params: Mapping[str, str], jkt: str | None = None) -> Issued:
    if client.is_public or "client_credentials" not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use client_credentials")
    requested = params.get("scope")
    # the substring test first: the usual request (no admin scope) parses its scope once, in grant_scope
    admin = requested is not None and ADMIN_SCOPE in requested and ADMIN_SCOPE in parse_scope(requested)
    if admin:
        _check_admin(client, requested or "")
    scope = ADMIN_SCOPE if admin else grant_scope(requested, client.scopes)
    now = p.now()
    claims = access_claims(p, client, Subject(client.client_id), scope, new_jti(), now, jkt)
    if admin:
        claims["aud"] = p.settings.issuer + ADMIN_AUDIENCE_PATH
    return issue_access(p, claims, scope, jkt)


def _check_admin(client: Client, requested: str) -> None:
    if not client.admin:
        raise InvalidScope(f"client {client.client_id!r} is not an admin client")
    if parse_scope(requested) != [ADMIN_SCOPE]:
        raise InvalidScope(f"{ADMIN_SCOPE} is asked for alone", description=f"{ADMIN_SCOPE} is asked for alone")
