"""RFC 6749 §4.3: the resource owner password credentials grant, for first-party clients only.

Failures are counted per username and per client address; past the limit the answer is 429 with
Retry-After. An unknown username costs one argon2 verification, like a wrong password, and every
failure has the same message.
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.errors import InvalidGrant, UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.credentials import check_credentials
from tokensrv.oauth.own_tokens import Issued, Subject, issue_for_user, new_session_id
from tokensrv.oauth.params import require
from tokensrv.oauth.scopes import grant_scope
from tokensrv.store import Client


async def grant(p: Provider, client: Client, params: Mapping[str, str], remote: str,
                jkt: str | None = None) -> Issued:
    if not client.first_party or "password" not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use the password grant")
    if client.require_mfa:  # no second factor can be asked here: only the browser's sign-in has one
        raise UnauthorizedClient(f"client {client.client_id!r} requires mfa; the password grant has none")
    username, password = require(params, "username"), require(params, "password")
    scope = grant_scope(params.get("scope"), client.scopes)
    user = await check_credentials(p, username, password, remote)
    if user is None:
        raise InvalidGrant("bad credentials", description="invalid username or password")
    # no browser session: the grant opens a session of its own, so logout by sid works alike
    subject = Subject.of_user(user, p.now(), new_session_id())
    return await issue_for_user(p, client, subject, scope, jkt=jkt)
