"""OIDC Core §5.3 the UserInfo endpoint, protected by a bearer access token (RFC 6750) or a
DPoP-bound one (RFC 9449 §7: `Authorization: DPoP <token>` and a proof by the token's key).

The token must be ours, unexpired, not revoked (the same checks as introspection), speak for a
user, and carry `openid`. The claims returned follow its scopes (OIDC Core §5.4, oauth/release.py). A DPoP-bound
token presented as Bearer is refused, as is an unbound one presented with the DPoP scheme.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokensrv.errors import InsufficientScope, InvalidDPoPProof, InvalidRequest, InvalidToken
from tokensrv.oauth import Provider, dpop
from tokensrv.oauth.endpoints.introspection import access_token_active
from tokensrv.oauth.own_tokens import read_own_jwt
from tokensrv.oauth.release import scope_claims, standard_claims
from tokensrv.verify.dpop import ALGORITHMS

PATH = "/oauth2/userinfo"
_DPOP_CHALLENGE = f'DPoP realm="tokensrv", algs="{" ".join(ALGORITHMS)}"'


class NoToken(InvalidToken):
    """RFC 6750 §3.1: a request without any credentials gets a challenge but no error code; RFC
    9449 §7.1: the DPoP scheme is offered too."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="tokensrv", ' + _DPOP_CHALLENGE}


class DPoPRefused(InvalidToken):
    """RFC 9449 §7.1: 401 with the DPoP scheme's challenge: `invalid_token` for a token that is bad
    or not bound to the proof's key, `invalid_dpop_proof` for the proof."""

    def __init__(self, detail: str, *, proof: bool = False) -> None:
        super().__init__(detail)
        if proof:
            self.error, self.description = "invalid_dpop_proof", InvalidDPoPProof.description
        self.headers = {"WWW-Authenticate": f'DPoP realm="tokensrv", error="{self.error}", '
                                            + _DPOP_CHALLENGE.removeprefix('DPoP realm="tokensrv", ')}


def access_token(authorization: str | None, form_token: str | None) -> tuple[str, str]:
    """("bearer" or "dpop", the token): from the header (RFC 6750 §2.1, RFC 9449 §7.1) or the form
    body (§2.2, bearer only); exactly one method (§2)."""
    if authorization is not None and form_token is not None:
        raise InvalidRequest("two bearer methods", description="send the access token in one way only")
    if form_token is not None:
        return "bearer", form_token
    if authorization is None:
        raise NoToken("no access token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not token.strip():
        raise NoToken("neither a bearer nor a DPoP authorization")
    return scheme.lower(), token.strip()


async def userinfo(p: Provider, token: str, scheme: str = "bearer", proofs: Sequence[str] = (),
                   method: str = "GET") -> dict[str, Any]:
    claims = read_own_jwt(p, token)
    refused = DPoPRefused if scheme == "dpop" else InvalidToken
    if claims is None or claims["exp"] <= p.now() or not await access_token_active(p, claims):
        raise refused("invalid, expired or revoked access token")
    await _check_binding(p, claims, token, scheme, proofs, method)
    if "auth_time" not in claims:
        raise InvalidToken("a client's own token has no user")
    scopes = str(claims.get("scope", "")).split()
    if "openid" not in scopes:
        raise InsufficientScope("no openid scope")
    user = await p.store.users.get_user(str(claims["sub"]))
    if user is None:
        raise InvalidToken("the user is gone")
    return {"sub": user.sub, **standard_claims(user, scopes), **scope_claims(p.claim_rules.current, user, scopes)}


async def _check_binding(p: Provider, claims: dict[str, Any], token: str, scheme: str,
                         proofs: Sequence[str], method: str) -> None:
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if scheme != "dpop":
        if jkt is not None:
            raise DPoPRefused("a DPoP-bound token presented as a bearer token")
        return
    if jkt is None:
        raise DPoPRefused("an unbound token with the DPoP scheme")
    if not proofs:
        raise DPoPRefused("no DPoP proof", proof=True)
    try:
        proof = await dpop.check(p, proofs, method, PATH, access_token=token)
    except InvalidDPoPProof as exc:
        raise DPoPRefused(exc.detail, proof=True) from None
    if proof.jkt != jkt:
        raise DPoPRefused("the proof is signed by another key than the token's")
