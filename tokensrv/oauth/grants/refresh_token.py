"""RFC 6749 §6 and OAuth 2.0 Security BCP §4.14: refresh with rotation and reuse detection.

Every use rotates the token atomically in the store. A rotated token presented again after its
successor was used means two parties hold the family: the family dies, with its outstanding access
tokens. Within REFRESH_REUSE_GRACE seconds of its rotation (60 by default; 0: never), the immediate
predecessor of a successor nobody has used yet is a retry (the client lost our answer, e.g. a 503
after the store ran the rotation): it gets a fresh pair, and the unused pair it replaces is revoked.
A thief and the client holding that predecessor still collide at the next use of either successor.
"""
from __future__ import annotations

from collections.abc import Mapping

from tokensrv.errors import InvalidDPoPProof, InvalidGrant, InvalidScope, UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.consent_checks import withdrawn_since
from tokensrv.oauth.endpoints.revocation import deny_jtis, kill_family, user_is_current
from tokensrv.oauth.own_tokens import (
    Issued,
    Subject,
    access_claims,
    id_token,
    issue_access,
    new_jti,
    new_refresh_token,
    parse_refresh_token,
    refresh_digest,
    refresh_idle,
)
from tokensrv.oauth.params import require
from tokensrv.oauth.scopes import parse_scope
from tokensrv.observability import events
from tokensrv.store import Client, RefreshFamily, Reused, RotateOutcome


async def grant(p: Provider, client: Client, params: Mapping[str, str], jkt: str | None = None) -> Issued:
    if "refresh_token" not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not refresh")
    presented = require(params, "refresh_token")
    family_id = parse_refresh_token(presented)
    if family_id is None:
        raise InvalidGrant("malformed refresh token")
    requested = params.get("scope")
    wanted = parse_scope(requested) if requested is not None else []  # malformed: before the store
    now, jti = p.now(), new_jti()
    token, _, digest = new_refresh_token(family_id)
    exp = now + p.settings.access_token_ttl
    # One store call checks and rotates: a family unknown or expired, of another client (RFC 6749
    # §10.4), bound to another DPoP key than the request's proof (RFC 9449 §5), or asked for a
    # scope it was not granted (§6: it may narrow, never widen) is refused
    # before anything is written, so the refused request leaves the presented token usable, or the
    # client's retry would look like reuse. It also reads the user and whether the family's SSO
    # session ended (logout): a user disabled, removed or signed out, or an ended session, are the
    # refusals checked after the rotation: the family dies then, so the rotation changes nothing.
    outcome, user, session_ended = await p.store.refresh.rotate_with_user(
        family_id, refresh_digest(presented), digest, client.client_id, now, jti, exp,
        refresh_idle(p, client, jkt), p.settings.refresh_reuse_grace,
        scope=wanted, max_life=p.settings.refresh_family_ttl, jkt=jkt or "")
    family = await _rotated(p, client, family_id, requested, outcome, jkt)
    if jkt and not family.jkt and refresh_idle(p, client, None) < refresh_idle(p, client, jkt):
        # a browser app's proof now, but its family was not bound at sign-in: the short idle still holds
        await p.store.refresh.cap_idle(family_id, min(now + refresh_idle(p, client, None), family.expires_at))
    if user is None or not user_is_current(user, family.created_ms):
        await kill_family(p, family)
        raise InvalidGrant("the user was disabled, removed or signed out")
    if session_ended:
        await kill_family(p, family)
        raise InvalidGrant("the SSO session of the refresh token ended (logout)")
    if await withdrawn_since(p, client, family.sub, family.created_ms):  # no read unless it asks consent
        await kill_family(p, family)
        raise InvalidGrant("the user withdrew their consent to this client")
    scope = " ".join(wanted) if wanted else family.scope
    # RFC 6749 §6: the scope may narrow for this access token; the family keeps its grant
    subject = Subject(family.sub, family.auth_time, family.sid, user.roles, family.amr, family.acr, user=user)
    claims = access_claims(p, client, subject, scope, jti, now, jkt)
    issued = issue_access(p, claims, scope, jkt)
    issued.response["refresh_token"] = token
    if "openid" in scope.split():
        issued.response["id_token"] = id_token(p, client, subject, issued.response["access_token"], now, None)
    return issued._replace(family_id=family_id)


async def _rotated(p: Provider, client: Client, family_id: str, requested: str | None,
                   outcome: RotateOutcome, jkt: str | None) -> RefreshFamily:
    """The family a rotation renewed; else the refusal (reuse: its access tokens deny-listed)."""
    if outcome == "unknown":
        raise InvalidGrant("refresh token unknown, revoked or expired")
    if outcome == "wrong_client":
        raise InvalidGrant("refresh token of another client")
    if outcome == "wrong_key" and jkt is None:
        raise InvalidDPoPProof("a DPoP-bound refresh token without a proof",
                               description="this refresh token is DPoP-bound: send a proof with its key")
    if outcome == "wrong_key":
        raise InvalidGrant("refresh token bound to another DPoP key")
    if outcome == "invalid_scope":
        raise InvalidScope(f"requested scope {requested!r} exceeds the refresh token's")
    if isinstance(outcome, Reused):
        await deny_jtis(p, outcome.outstanding, family=family_id)
        events.refresh_reused(family_id, client.client_id)
        raise InvalidGrant(f"refresh token reuse: family {family_id} revoked")
    await deny_jtis(p, outcome.replaced)  # a retry: the unused pair the lost answer carried
    return outcome.family
