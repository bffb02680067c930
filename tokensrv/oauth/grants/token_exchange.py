"""RFC 8693 token exchange, for service-to-service delegation.

A confidential client presents a token it received (`subject_token`: one of our access tokens or
ID tokens, addressed to it or issued to it) and gets an access token for one audience its
registration allows (`exchange_audiences`), named by `audience` or `resource`. The new token keeps
the subject's `sub`, `sid` and `auth_time`, so a logout, a sign-out everywhere or a disabled user
stops it as it stops the subject token. Nothing widens: the scope is the subject token's or a
subset of it (an ID token grants none), the `exp` never passes the subject token's, and there is
one audience. With an `actor_token` (our access token, issued to the calling client, typically
its client_credentials token) the new token says who acts: `act: {"sub": ...}`, nesting the
subject token's own `act` for a chain (§4.1). No refresh token.

Errors follow §2.2.2: a subject or actor token that is not ours, expired, revoked or not meant
for the caller is `invalid_request` (the RFC's MUST); a target outside the policy is
`invalid_target`; a wider scope is `invalid_scope`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tokensrv.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.metadata import TOKEN_EXCHANGE
from tokensrv.oauth.endpoints.introspection import access_token_active
from tokensrv.oauth.own_tokens import ACCESS_TOKEN_TYPE, Issued, new_jti, read_own_jwt, sign
from tokensrv.oauth.params import require
from tokensrv.oauth.scopes import parse_scope
from tokensrv.store import Client

ACCESS_TOKEN_URN = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_URN = "urn:ietf:params:oauth:token-type:id_token"
SUBJECT_TOKEN_TYPES = {ACCESS_TOKEN_URN: ACCESS_TOKEN_TYPE, ID_TOKEN_URN: "JWT"}  # URN -> JWT typ
MAX_ACT_DEPTH = 8  # actors in a chain; deeper is refused rather than growing tokens without bound


async def grant(p: Provider, client: Client, params: Mapping[str, str], jkt: str | None = None) -> Issued:
    """`jkt`: the request's DPoP key (RFC 9449): the new token is bound to it (`cnf.jkt`, type DPoP)."""
    if client.is_public or TOKEN_EXCHANGE not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not exchange tokens")
    if params.get("requested_token_type", ACCESS_TOKEN_URN) != ACCESS_TOKEN_URN:
        raise InvalidRequest("requested_token_type", description="only access tokens are issued")
    subject_type = require(params, "subject_token_type")
    subject = await _read(p, require(params, "subject_token"), subject_type, "subject")
    if not _meant_for(subject, client, subject_type):
        raise InvalidRequest("subject token neither addressed nor issued to the caller",
                             description="the subject token was not issued to this client")
    if client.require_mfa and "mfa" not in (subject.get("amr") or ()):  # its tokens need an mfa sign-in
        raise InvalidGrant("subject token without mfa for a client that requires it",
                           description="the subject token's sign-in did not use a second factor")
    act = subject.get("act")
    if "actor_token" in params:
        actor_type = require(params, "actor_token_type")
        if actor_type != ACCESS_TOKEN_URN:
            raise InvalidRequest("actor_token_type", description="the actor token must be an access token")
        actor = await _read(p, params["actor_token"], actor_type, "actor")
        if actor.get("client_id") != client.client_id:
            raise InvalidRequest("actor token of another client",
                                 description="the actor token was not issued to this client")
        act = {"sub": actor["sub"], **({"act": act} if act else {})}
    elif "actor_token_type" in params:
        raise InvalidRequest("actor_token_type without actor_token",
                             description="actor_token_type was sent without actor_token")
    if _depth(act) > MAX_ACT_DEPTH:
        raise InvalidRequest("act chain too deep", description="too many actors in the delegation chain")
    scope = _narrowed(subject, params.get("scope"), subject_type)
    claims = _claims(p, client, subject, _target(client, params), scope, act)
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    response = {"access_token": sign(p, claims, ACCESS_TOKEN_TYPE), "issued_token_type": ACCESS_TOKEN_URN,
                "token_type": "Bearer" if jkt is None else "DPoP", "expires_in": claims["exp"] - claims["iat"],
                "scope": scope}
    return Issued(response, claims)


async def _read(p: Provider, token: str, token_type: str, role: str) -> dict[str, Any]:
    """The claims of a live token of ours of that type; else invalid_request (§2.2.2)."""
    typ = SUBJECT_TOKEN_TYPES.get(token_type)
    if typ is None:
        raise InvalidRequest(f"{role} token type", description=f"unsupported {role}_token_type")
    claims = read_own_jwt_claims(p, token, typ)
    if claims is None:
        raise InvalidRequest(f"{role} token not ours", description=f"the {role} token is invalid")
    if claims["exp"] <= p.now():
        raise InvalidRequest(f"{role} token expired", description=f"the {role} token is invalid")
    if not await access_token_active(p, claims):
        raise InvalidRequest(f"{role} token revoked", description=f"the {role} token is invalid")
    return claims


def read_own_jwt_claims(p: Provider, token: str, typ: str) -> dict[str, Any] | None:
    """read_own_jwt, and a `sub` to act for."""
    claims = read_own_jwt(p, token, typ)
    if claims is None or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return None
    return claims


def _meant_for(subject: Mapping[str, Any], client: Client, subject_type: str) -> bool:
    """An ID token names its client in `aud`; an access token is the caller's own or for it."""
    aud = subject.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if subject_type == ID_TOKEN_URN:
        return client.client_id in audiences
    return subject.get("client_id") == client.client_id or (client.audience or client.client_id) in audiences


def _narrowed(subject: Mapping[str, Any], requested: str | None, subject_type: str) -> str:
    """The subject token's scope or a subset of it; an ID token carries no scope to hand on."""
    granted = [] if subject_type == ID_TOKEN_URN else str(subject.get("scope", "")).split()
    if requested is None:
        return " ".join(granted)
    wanted = parse_scope(requested)
    if not set(wanted) <= set(granted):
        raise InvalidScope(f"requested scope exceeds the subject token's {' '.join(granted)!r}")
    return " ".join(wanted)


def _target(client: Client, params: Mapping[str, str]) -> str:
    """One audience, named by `audience` or `resource` (RFC 8707: an absolute URI), in the policy."""
    audience, resource = params.get("audience"), params.get("resource")
    if resource is not None:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or parts.fragment or "#" in resource:
            raise InvalidTarget("resource is not an absolute URI",
                                description="resource must be an absolute URI without a fragment")
        if audience is not None and audience != resource:
            raise InvalidTarget("two targets", description="name one target: audience or resource")
    target = audience or resource
    if target is None:
        raise InvalidRequest("no target", description="parameter 'audience' or 'resource' is required")
    if target not in client.exchange_audiences:
        raise InvalidTarget(f"target outside {client.client_id!r}'s exchange policy")
    return target


def _depth(act: Any) -> int:
    depth = 0
    while isinstance(act, dict):
        depth, act = depth + 1, act.get("act")
    return depth


def _claims(p: Provider, client: Client, subject: Mapping[str, Any], audience: str, scope: str,
            act: Any) -> dict[str, Any]:
    now = p.now()
    claims: dict[str, Any] = {
        "iss": p.settings.issuer, "sub": subject["sub"], "aud": audience,
        "exp": min(now + p.settings.access_token_ttl, int(subject["exp"])), "iat": now,
        "jti": new_jti(), "client_id": client.client_id, "scope": scope,
    }
    if "auth_time" in subject:  # a user's token: the session and roles travel on
        claims.update(auth_time=subject["auth_time"], roles=list(subject.get("roles", [])))
        if subject.get("sid"):
            claims["sid"] = subject["sid"]
        # the same sign-in, told as the subject token (ours, signed) told it: amr/acr carry over
        claims.update({name: subject[name] for name in ("amr", "acr") if name in subject})
    if act:
        claims["act"] = act
    return claims
