"""Step-up: what an authorization request asks of the sign-in that the SSO session has not given
(OIDC Core §3.1.2.1 `prompt`, `max_age`, `acr_values`; §5.5.1.1 `acr` in the `claims` request;
the client's `require_mfa`), so that only that is asked: a fresh password for the same user, or
the second factor (its enrolment first if the user has none). No HTTP.

acr levels (oauth/auth_methods.py) are ordered: an mfa sign-in meets a request for pwd too.
`acr_values` is voluntary: values we do not know are ignored and, if none can be met, the code
is issued with the acr the sign-in has. An *essential* acr (§5.5.1.1) is a requirement: the ID
token's acr is then one of the values asked for, and if none can be met (unknown values only, or
mfa while TOKENSRV_MFA=off) the request fails with `unmet_authentication_requirements` (OpenID
Connect Core Error Code unmet_authentication_requirements 1.0: "the Authorization Server is
unable to meet the requirements of the Relying Party for the authentication of the End-User"),
as §5.5.1.1 says to treat it: a failed authentication attempt. A client that requires mfa on a
server that offers none fails the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from tokensrv.errors import LoginRequired, OAuthError
from tokensrv.oauth import Provider
from tokensrv.oauth.auth_methods import ACR_MFA, ACR_PASSWORD, acr_of
from tokensrv.oauth.browser import second_factor
from tokensrv.oauth.claims_request import parse_claims
from tokensrv.store import AuthorizationRequest, BrowserSession

LEVELS = {ACR_PASSWORD: 1, ACR_MFA: 2}  # the acr values we can meet, weakest first


class UnmetAuthenticationRequirements(OAuthError):
    error, status = "unmet_authentication_requirements", 400
    description = "the sign-in this request requires cannot be provided"


class InteractionRequired(OAuthError):
    """OIDC Core §3.1.2.6: prompt=none, and the user must do more than authenticate (enrol)."""
    error, status, description = "interaction_required", 400, "the user must set up two-step verification"


@dataclass(frozen=True)
class Missing:
    """What the session lacks for this request; neither: a code now."""
    password: bool = False  # a fresh password for the session's user (prompt=login, max_age)
    second_factor: bool = False  # a second factor (acr mfa asked, or the client requires it)

    def __bool__(self) -> bool:
        return self.password or self.second_factor


def requested_acr(request: AuthorizationRequest) -> tuple[tuple[str, ...], bool]:
    """The acr values asked for, in order of preference, and whether they are essential: an
    essential `acr` claim's, else `acr_values`, else a voluntary `acr` claim's."""
    asked = parse_claims(request.claims).acr
    wanted = tuple(v for v in asked.wanted if isinstance(v, str)) if asked is not None else ()
    if asked is not None and asked.essential:
        return wanted, True
    return request.acr_values or wanted, False


def _aim(p: Provider, request: AuthorizationRequest, client_requires_mfa: bool) -> str | None:
    """The acr the sign-in must reach (None: whatever it has); raises when it cannot be met."""
    offered = second_factor.offered(p)
    values, essential = requested_acr(request)
    reachable = [v for v in values if v in LEVELS and (v != ACR_MFA or offered)]
    if client_requires_mfa and not offered:
        raise UnmetAuthenticationRequirements("the client requires mfa; TOKENSRV_MFA=off")
    if essential and values and not reachable:
        raise UnmetAuthenticationRequirements(f"essential acr {values!r} cannot be met")
    if client_requires_mfa:
        return ACR_MFA
    return reachable[0] if reachable else None


async def mfa_wanted(p: Provider, request: AuthorizationRequest) -> bool:
    """Whether this request's sign-in needs a second factor (raises when its acr cannot be met)."""
    client = await p.store.clients.get_client(request.client_id) if request.client_id else None
    return _aim(p, request, client is not None and client.require_mfa) == ACR_MFA


def missing(p: Provider, request: AuthorizationRequest, session: BrowserSession, mfa: bool) -> Missing:
    """§3.1.2.1: prompt=login, or a sign-in older than max_age, asks for a fresh password ("max_age=0
    is equivalent to prompt=login", even within the second of the sign-in); `mfa` (mfa_wanted) that
    the session has not reached asks for the second factor."""
    age = p.now() - session.auth_time
    stale = request.max_age is not None and (request.max_age == 0 or age > request.max_age)
    return Missing("login" in request.prompt or stale, mfa and "mfa" not in session.amr)


async def refusal_without_prompt(p: Provider, missing_now: Missing, sub: str) -> OAuthError:
    """§3.1.2.6 for prompt=none: login_required when the user must authenticate (a password, a
    code); interaction_required when they must first enrol a second factor."""
    if missing_now.second_factor and not missing_now.password \
            and await p.store.mfa.get_second_factor(sub) is None:
        return InteractionRequired("prompt=none; mfa needed and none enrolled")
    return LoginRequired("prompt=none; the session does not satisfy the request")


def told_acr(amr: tuple[str, ...], request: AuthorizationRequest) -> str:
    """The acr the tokens tell: the sign-in's, or, for an essential acr (§5.5.1.1: "MUST return
    an acr Claim Value that matches one of the requested values"), the first value asked that the
    sign-in meets ("" when that is the sign-in's own). Raises when it meets none."""
    values, essential = requested_acr(request)
    own = acr_of(amr)
    if not essential or not values or own in values:
        return ""
    met = [v for v in values if v in LEVELS and LEVELS[v] <= LEVELS[own]]
    if not met:
        raise UnmetAuthenticationRequirements(f"essential acr {values!r} not met by {own}")
    return met[0]
