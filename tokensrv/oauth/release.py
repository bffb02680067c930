"""Which of a user's claims a token or UserInfo carries, by the scopes granted (OIDC Core §5.4)
and the operator's claims file (tokensrv/claims.py, read once at start).

- access tokens: `roles` always (own_tokens.access_claims), `groups` with the `groups` scope, the
  claims of the custom scopes granted, and the client's extra claims;
- UserInfo: the standard claims of profile, email, address and phone, and the same scope claims;
- ID tokens: none of them. tokensrv always issues an access token with an ID token, so §5.4 puts
  the claims that scopes ask for at UserInfo; an ID token only says who signed in and how.

The OIDC `claims` parameter (§5.5) moves claims into the ID token: a claim it asks for there is
added when a granted scope releases it (`asked_for_id_token`). It releases nothing the scopes do
not: the scopes are what the user (or the operator, for a first-party client) agreed to. Its
`userinfo` member asks for nothing more than the scopes release at UserInfo already.
"""
from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from tokensrv.claims import BOOLEAN_ATTRIBUTES, STANDARD_SCOPES, ClaimRules, ClientClaims
from tokensrv.store import User


def typed(name: str, value: str) -> Any:
    """An attribute (stored as text, checked by claims.check_attribute) as its claim's JSON type."""
    if name in BOOLEAN_ATTRIBUTES:
        return value == "true"
    if name == "updated_at":
        return int(value)
    if name == "address":
        return json.loads(value)
    return value


def standard_claims(user: User, scopes: Collection[str]) -> dict[str, Any]:
    """OIDC Core §5.1 claims of the granted scopes, from the user's record: the username is the
    profile's preferred_username and name unless attributes say otherwise; email_verified is false
    unless an administrator said true (nobody has proved the user receives mail there)."""
    attributes = dict(user.attributes)
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims.update(preferred_username=user.username, name=user.username)
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=False)
    for scope, names in STANDARD_SCOPES.items():
        if scope in scopes:
            claims.update({name: typed(name, attributes[name]) for name in names
                           if name in attributes and (scope != "email" or user.email)})
    return claims


def scope_claims(rules: ClaimRules, user: User, scopes: Collection[str]) -> dict[str, Any]:
    """`groups` and the custom scopes' claims (from the user's attributes; a missing one is left out)."""
    claims: dict[str, Any] = {"groups": list(user.groups)} if "groups" in scopes else {}
    if rules.scopes:
        attributes = dict(user.attributes)
        for scope in scopes:
            claims.update({claim: typed(name, attributes[name]) for claim, name in rules.scopes.get(scope, ())
                           if name in attributes})
    return claims


def asked_for_id_token(rules: ClaimRules, user: User, scopes: Collection[str],
                       asked: Collection[str]) -> dict[str, Any]:
    """The user's claims that the `claims` parameter asks for in the ID token, among those the
    granted scopes release (the protocol claims it names are the ID token's own: not here)."""
    if not asked:
        return {}
    released = {**standard_claims(user, scopes), **scope_claims(rules, user, scopes)}
    return {name: value for name, value in released.items() if name in asked}


def client_claims(extra: ClientClaims, user: User | None) -> dict[str, Any]:
    """A client's extra access-token claims: its static values, and for a user its attributes."""
    claims = dict(extra.static)
    if user is not None and extra.from_user:
        attributes = dict(user.attributes)
        claims.update({claim: typed(name, attributes[name]) for claim, name in extra.from_user
                       if name in attributes})
    return claims
