"""RFC 6749 §4.1.3-§4.1.4: the authorization_code grant, with PKCE (RFC 7636 §4.5-§4.6).

A code is redeemed once, atomically in the store. Presented again, it is refused and everything
the first redemption issued is revoked (§4.1.2: the code may have been stolen). Any mismatch
(client, redirect URI, verifier) also spends the code: it is never tried twice.
"""
from __future__ import annotations

import hmac
from collections.abc import Mapping

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tokensrv.errors import InvalidGrant, InvalidRequest, UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.browser.authorize import PKCE_VALUE
from tokensrv.oauth.claims_request import parse_claims
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.oauth.consent_checks import consent_covers
from tokensrv.oauth.dpop import check_code_binding
from tokensrv.oauth.endpoints.revocation import deny_jtis, kill_family, user_is_current
from tokensrv.oauth.own_tokens import Issued, Subject, issue_for_user
from tokensrv.oauth.params import require
from tokensrv.store import AuthCode, Client, CodeReplay


async def grant(p: Provider, client: Client, params: Mapping[str, str], jkt: str | None = None) -> Issued:
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use authorization_code")
    code = require(params, "code")
    verifier = params.get("code_verifier")
    if verifier is not None and not PKCE_VALUE.match(verifier):
        raise InvalidRequest("malformed code_verifier", description="code_verifier is malformed")
    digest = secret_digest(code)
    taken = await p.store.sessions.take_code(digest, max(p.settings.access_token_ttl, p.settings.auth_code_ttl))
    if taken is None:
        raise InvalidGrant("unknown authorization code")
    if isinstance(taken, CodeReplay):
        await _revoke_issued(p, taken)
        raise InvalidGrant("authorization code presented again: its tokens are revoked")
    _check_binding(p, taken, client, params, verifier)
    check_code_binding(taken.request.dpop_jkt, jkt)  # spent too when it fails, like any mismatch
    user = await p.store.users.get_user(taken.sub)
    _, sid_revoked, _ = await p.store.denylist.denied("", taken.sid, taken.sub)
    if user is None or not user_is_current(user, taken.session_created_ms) or sid_revoked:
        raise InvalidGrant("the session ended before the code was redeemed")
    if not await consent_covers(p, client, user.sub, taken.request.scope):  # no read unless it asks consent
        raise InvalidGrant("the user's consent was withdrawn before the code was redeemed")
    subject = Subject(user.sub, taken.auth_time, taken.sid, user.roles, taken.amr, taken.acr, user=user)
    asked = parse_claims(taken.request.claims).id_token  # OIDC Core §5.5: claims for the ID token
    issued = await issue_for_user(p, client, subject, taken.request.scope, taken.request.nonce, jkt, tuple(asked))
    revocable = CodeReplay(issued.family_id, issued.claims["jti"], int(issued.claims["exp"]))
    if not await p.store.sessions.record_code_tokens(digest, revocable.family_id, revocable.jti or "", revocable.exp):
        await _revoke_issued(p, revocable)  # a replay arrived while we were issuing
        raise InvalidGrant("authorization code presented twice at once")
    return issued


def _check_binding(p: Provider, code: AuthCode, client: Client, params: Mapping[str, str],
                   verifier: str | None) -> None:
    request = code.request
    if request.client_id != client.client_id:
        raise InvalidGrant("code of another client")
    if p.now() >= code.expires_at:
        raise InvalidGrant("expired authorization code")
    redirect_uri = params.get("redirect_uri")
    if (request.redirect_uri_given and redirect_uri is None) or (
            redirect_uri is not None and redirect_uri != request.redirect_uri):
        raise InvalidGrant("redirect_uri differs from the authorization request")
    if request.code_challenge is None:
        if verifier is not None:  # RFC 9700 §2.1.1: a verifier without a challenge is an attack sign
            raise InvalidGrant("code_verifier for a code without code_challenge")
        return
    if verifier is None:
        raise InvalidGrant("missing code_verifier")
    if not hmac.compare_digest(create_s256_code_challenge(verifier), request.code_challenge):
        raise InvalidGrant("code_verifier does not match code_challenge")


async def _revoke_issued(p: Provider, issued: CodeReplay) -> None:
    if issued.family_id is not None:
        found = await p.store.refresh.get_family(issued.family_id)
        if found is not None:
            await kill_family(p, found[0])
    if issued.jti is not None:
        await deny_jtis(p, [(issued.jti, issued.exp)])
