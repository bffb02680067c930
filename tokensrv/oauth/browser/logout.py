"""OpenID Connect RP-Initiated Logout 1.0 §2-§3: end the SSO session, revoke its tokens, go back.

An ID token we issued as `id_token_hint` (expired is fine, but signed by us) shows that an
application the user signed in to asks for the logout: it happens at once. Without one (or when
the hint names another user than the browser's session) the user confirms on our page first, so
a third-party page cannot sign people out silently. A `post_logout_redirect_uri` is followed only
when it is registered for the client; otherwise nothing redirects.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider, backchannel
from tokensrv.oauth.browser import sessions
from tokensrv.oauth.browser.authorize import with_params
from tokensrv.oauth.endpoints.revocation import revoke_session
from tokensrv.oauth.own_tokens import read_own_jwt


@dataclass(frozen=True)
class LogoutRequest:
    hint: dict[str, Any] | None  # the id_token_hint's claims
    client_id: str | None
    post_logout_redirect_uri: str | None  # registered for client_id
    state: str | None

    @property
    def location(self) -> str | None:
        if self.post_logout_redirect_uri is None:
            return None
        return with_params(self.post_logout_redirect_uri, {"state": self.state})


@dataclass(frozen=True)
class Confirm:
    """Ask the user first; the form posts these back."""
    request: LogoutRequest


@dataclass(frozen=True)
class SignedOut:
    location: str | None  # where to send the browser, or None: show "signed out"


async def check(p: Provider, params: Mapping[str, str]) -> LogoutRequest:
    hint = None
    if "id_token_hint" in params:
        hint = read_own_jwt(p, params["id_token_hint"], typ="jwt")
        if hint is None or not isinstance(hint.get("sub"), str):
            raise InvalidRequest("bad id_token_hint", description="id_token_hint is not an ID token issued here")
    client_id = params.get("client_id")
    if hint is not None:
        audiences = hint["aud"] if isinstance(hint.get("aud"), list) else [hint.get("aud")]
        if client_id is not None and client_id not in audiences:
            raise InvalidRequest("client_id not in the hint's aud",
                                 description="client_id does not match the id_token_hint")
        client_id = client_id or (audiences[0] if len(audiences) == 1 else None)
    uri = params.get("post_logout_redirect_uri")
    if uri is not None:
        client = await p.store.clients.get_client(client_id) if client_id else None
        if client is None or uri not in client.post_logout_redirect_uris:
            raise InvalidRequest("unregistered post_logout_redirect_uri",
                                 description="the post_logout_redirect_uri is not registered for the client")
    return LogoutRequest(hint, client_id, uri, params.get("state"))


async def logout(p: Provider, params: Mapping[str, str], session_secret: str | None,
                 confirmed: bool) -> Confirm | SignedOut:
    """`confirmed`: the user submitted our confirmation form (its CSRF token checked)."""
    request = await check(p, params)
    session = await sessions.current(p, session_secret)
    hint = request.hint
    silent = hint is not None and (session is None or session.sub == hint["sub"])
    if not (silent or confirmed):
        return Confirm(request)
    ended = await sessions.end(p, session_secret)
    if hint is not None and hint.get("sid") and hint["sid"] not in sessions.sids_of(ended):
        await revoke_session(p, str(hint["sid"]))  # the application's session, from another login
        await backchannel.sessions_ended(p, str(hint["sub"]), [str(hint["sid"])])
    return SignedOut(request.location)
