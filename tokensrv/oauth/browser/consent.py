"""The consent step of the authorization flow (whether it is needed, and parking the request for
it, are in authorize.py, which signin.py also calls): after sign-in (and any step-up), a client that is
not first-party (Client.asks_consent: every registered client, and an operator's marked
`--consent required`) gets a code only for scopes the user allowed it. No HTTP.

Every scope counts, `openid` and `offline_access` included: `openid` tells the client who the user
is, and is asked about by name. Whether the client keeps access after the user leaves is told by
what will happen, not by the scope: a client with the refresh_token grant gets a refresh token
whatever it asks, so the page says it keeps access; one without it does not, offline_access or not.
A grant is remembered per user and client as a set of scopes; a request within it
goes on without the page, one asking for more asks again (for all it asks: the page lists them
all), `prompt=consent` always asks, and `prompt=none` that would need the page is
`consent_required` (OIDC Core §3.1.2.6). Deny is `access_denied` at the redirect URI (RFC 6749
§4.1.2.1).

The request waits server-side like the login page's (a PendingLogin whose `resume` is PATH and
whose `sub` is the user asked, parked by authorize.park): it is bound to the browser that started
it (the CSRF cookie's digest), its form echoes the cookie (double submit), and it is answered only
in the session it was parked for, once. It is no sign-in: the login, second-step and passkey
pages refuse it (signin.sign_in_request).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tokensrv.errors import AccessDenied, InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.browser import authorize, sessions, signin, step_up
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.observability import events
from tokensrv.store import BrowserSession, Client, PendingLogin

PATH = authorize.CONSENT_PATH
OFFLINE = "offline_access"

# what each built-in scope lets the application do, in the words the page uses
DESCRIPTIONS = {
    "openid": "Know who you are: your account's identifier on this server",
    "profile": "See your name and profile details (picture, locale, time zone)",
    "email": "See your email address",
    "address": "See your postal address",
    "phone": "See your phone number",
    "roles": "See the roles you have",
    "groups": "See the groups you belong to",
    "offline_access": "Keep access when you are not using it, until you withdraw it",
}


class ConsentExpired(InvalidRequest):
    description = ("This request has expired, was started in another browser or was answered already. "
                   "Go back to the application and try again.")


@dataclass(frozen=True)
class Asked:
    """The page: who asks (client_id), whom (username), for what (scopes, each with its words)."""
    request_id: str
    csrf_token: str
    client_id: str
    username: str
    scopes: tuple[tuple[str, str], ...]  # (scope, what it lets the application do)
    redirect_host: str = ""  # where the answer goes: the one thing about a client its name cannot fake
    unverified_by: str = ""  # a client that registered itself: nobody at this issuer (host) vouched for it


def scope_words(p: Provider, scope: str) -> str:
    """A scope in words: ours described, a custom one (the claim rules in effect) by the claims it
    releases."""
    if scope in DESCRIPTIONS:
        return DESCRIPTIONS[scope]
    released = [claim for claim, _ in p.claim_rules.current.scopes.get(scope, ())]
    return f"See your {', '.join(released)}" if released else f"Use the permission “{scope}”"


async def _waiting(p: Provider, request_id: str | None, browser: str | None,
                   session_secret: str | None) -> tuple[str, PendingLogin, BrowserSession]:
    """The parked request, for this browser and the user it was parked for, still signed in."""
    try:
        csrf, pending = await signin.pending_login(p, request_id, browser)
    except signin.LoginExpired as exc:
        raise ConsentExpired(exc.detail) from None
    session = await sessions.current(p, session_secret)
    if pending.resume != PATH or not pending.sub or session is None or session.sub != pending.sub \
            or not signin.same_secret(secret_digest(session_secret or ""), pending.session):
        raise ConsentExpired("not a consent request, or not for this session")
    # the same user may have signed in again, more weakly, since the request was parked
    if step_up.missing(p, pending.request, session, await step_up.mfa_wanted(p, pending.request)).second_factor:
        raise ConsentExpired("the session lacks the second factor the request needs")
    return csrf, pending, session


async def show(p: Provider, request_id: str | None, browser: str | None, session_secret: str | None) -> Asked:
    csrf, pending, session = await _waiting(p, request_id, browser, session_secret)
    user = await p.store.users.get_user(session.sub)
    if user is None or user.disabled:
        raise ConsentExpired("the user is gone")
    request = pending.request
    client = await p.store.clients.get_client(request.client_id)
    if client is None:
        raise ConsentExpired("the client is gone")
    # its name is the client's own choice: say where it sends the user, and who did not check it
    unverified = (urlsplit(p.settings.issuer).hostname or "") if client.registered else ""
    return Asked(request_id or "", csrf, request.client_id, user.username, _told(p, client, request.scope),
                 urlsplit(request.redirect_uri).hostname or "", unverified)


def _told(p: Provider, client: Client, scope: str) -> tuple[tuple[str, str], ...]:
    """The scopes in words, as what will happen: a client that may refresh gets a refresh token
    whatever it asks (own_tokens: the refresh_token grant decides, public contract), so it keeps
    access when the user is away, offline_access asked or not; one that may not does not, even
    with offline_access. That line comes last, named offline_access."""
    keeps = "refresh_token" in client.grant_types
    told = tuple((s, scope_words(p, s)) for s in scope.split() if s != OFFLINE)
    return (*told, (OFFLINE, DESCRIPTIONS[OFFLINE])) if keeps else told


async def decide(p: Provider, form: Mapping[str, str], browser: str | None, session_secret: str | None,
                 remote: str) -> str:
    """Allow (the grant remembered, then the code) or Deny (access_denied): where the browser goes."""
    request_id = form.get("request", "")
    csrf, pending, session = await _waiting(p, request_id, browser, session_secret)
    if not signin.same_secret(form.get("csrf_token"), csrf):
        raise ConsentExpired("consent page: CSRF token does not match the cookie")
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        raise InvalidRequest("consent decision", description="choose Allow or Deny")
    if await p.store.sessions.take_pending_login(request_id) is None:
        raise ConsentExpired("the consent form was submitted twice")
    request = pending.request
    if decision == "deny":
        events.consent_changed("denied", session.sub, remote, client_id=request.client_id)
        denied = AccessDenied("the user denied consent", description="the user did not allow the application")
        return authorize.error_location(p, request.redirect_uri, denied, request.state)
    client = await p.store.clients.get_client(request.client_id)
    if client is None:  # removed while the page was shown
        raise ConsentExpired("the client is gone")
    await p.store.consents.grant_consent(session.sub, request.client_id, request.scope.split(), p.now_ms(),
                                         client.created_at)
    events.consent_changed("granted", session.sub, remote, client_id=request.client_id)
    return await authorize.issue_code(p, request, session)
