"""RFC 6749 §4.1.1-§4.1.2 the authorization endpoint: PKCE (RFC 7636), OIDC Core §3.1.2, RFC 9207,
and requests pushed first (RFC 9126 §4: `client_id` and `request_uri` only; oauth/endpoints/par.py).

Until the client and its redirect URI are known to be right, an error is raised (the web layer
shows a page: redirecting to an unchecked URI would make us an open redirector). After that,
every error goes back to the client as a §4.1.2.1 redirect carrying `error`, `state` and `iss`.
That includes a repeated or over-long parameter: so the request comes in as the pairs sent, and
`client_id` and `redirect_uri` are read from them first, on their own.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from tokensrv.errors import InvalidRequest, LoginRequired, OAuthError, UnauthorizedClient, UnsupportedResponseType
from tokensrv.oauth import Provider
from tokensrv.oauth.browser import sessions, step_up
from tokensrv.oauth.claims_request import normalised
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.oauth.params import single_valued
from tokensrv.oauth.scopes import grant_scope
from tokensrv.store import AuthCode, AuthorizationRequest, BrowserSession, Client, PendingLogin, PushedRequest

PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1-§4.2
DPOP_JKT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 (RFC 7638)
PROMPTS = ("none", "login", "consent")  # consent: oauth/browser/consent.py
CONSENT_PATH = "/consent"  # the consent page (oauth/browser/consent.py)
LOGIN_TTL = 600  # seconds a user has to fill in the login page


class RequestNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: request objects are not supported."""
    error, status, description = "request_not_supported", 400, "request objects are not supported"


class RequestUriNotSupported(OAuthError):
    error, status, description = "request_uri_not_supported", 400, "request_uri is not supported"


class InvalidRequestUri(OAuthError):
    """RFC 9101 §7: a request_uri that is unknown, expired, used already or another client's."""
    error, status, description = ("invalid_request_uri", 400,
                                  "the request_uri is unknown, expired, already used or not this client's")


class PushRequired(InvalidRequest):
    description = "this client must push its authorization requests first (RFC 9126)"


REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"  # RFC 9126 §2.2


@dataclass(frozen=True)
class Redirect:
    """Send the browser here; `error` is what went wrong, for the log (it is already in the URL)."""
    location: str
    error: OAuthError | None = None


@dataclass(frozen=True)
class Login:
    """No usable session: show the login page for this pending request (with `second_step`, the
    session's password stands: the second-factor page, for a step-up to mfa)."""
    request_id: str
    second_step: bool = False


def with_params(uri: str, params: Mapping[str, str | None]) -> str:
    """The URI with these query parameters added to any it already has (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    added = urlencode({k: v for k, v in params.items() if v is not None})
    # the registered query stays byte for byte: the client may compare it
    query = "&".join(q for q in (parts.query, added) if q)
    return urlunsplit(parts._replace(query=query))


async def authorize(p: Provider, pairs: Sequence[tuple[str, object]], session_secret: str | None,
                    browser: str) -> Redirect | Login:
    """Answer an authorization request (its parameters as sent, repeats included) from the browser
    whose CSRF cookie is `browser`."""
    if any(name == "request_uri" and str(value).startswith(REQUEST_URI_PREFIX) for name, value in pairs):
        request = await _pushed(p, _only(pairs, "client_id", "request_uri"))
        return await _answer(p, request, session_secret, browser, request.redirect_uri, request.state)
    client, redirect_uri = await _client_and_redirect_uri(p, _only(pairs, "client_id", "redirect_uri"))
    state = _state_to_send_back(pairs)
    try:
        if p.settings.require_par or client.require_pushed_authorization_requests:
            raise PushRequired(f"client {client.client_id!r} did not push its request")
        request = _checked_request(client, single_valued(pairs), redirect_uri)
    except OAuthError as exc:
        return Redirect(error_location(p, redirect_uri, exc, state), exc)
    return await _answer(p, request, session_secret, browser, redirect_uri, state)


async def _answer(p: Provider, request: AuthorizationRequest, session_secret: str | None, browser: str,
                  redirect_uri: str, state: str | None) -> Redirect | Login:
    """A checked request: a code on a session that satisfies it (after the consent page, if the
    client asks it: oauth/browser/consent.py), else the login page, or only what the session lacks
    (oauth/browser/step_up.py); with prompt=none, the §3.1.2.6 error."""
    try:
        mfa = await step_up.mfa_wanted(p, request)  # an acr that cannot be met fails here, first
        session = await sessions.current(p, session_secret)
        if session is None:
            if "none" in request.prompt:
                raise LoginRequired("prompt=none without a usable session")
            return Login(await park(p, request, secret_digest(browser)))
        lacking = step_up.missing(p, request, session, mfa)
        if lacking and "none" in request.prompt:
            raise await step_up.refusal_without_prompt(p, lacking, session.sub)
        if lacking.password:  # the same user's password again (then the second factor if due)
            return Login(await park(p, request, secret_digest(browser), confirm=session.sub,
                                      session=session_secret))
        if lacking.second_factor:  # the password stands: the second step only
            return Login(await park(p, request, secret_digest(browser), sub=session.sub, session=session_secret),
                         second_step=True)
        return Redirect(await code_or_consent(p, request, session, secret_digest(browser), session_secret))
    except OAuthError as exc:
        return Redirect(error_location(p, redirect_uri, exc, state), exc)


def checked_pushed_request(client: Client, params: Mapping[str, str]) -> AuthorizationRequest:
    """RFC 9126 §2.1: a pushed request is checked exactly as one sent to this endpoint, but every
    fault is told to the client in the PAR response (no redirect)."""
    if "request_uri" in params:
        raise InvalidRequest("request_uri pushed", description="request_uri must not be pushed")
    return _checked_request(client, params, _redirect_uri(client, params))


def pushed_request_key(client_id: str, request_uri: str) -> str:
    """The store's name of a pushed request: found only with the client it was pushed by."""
    return secret_digest(f"{client_id} {request_uri}")


async def _pushed(p: Provider, params: Mapping[str, str]) -> AuthorizationRequest:
    """The pushed request behind request_uri, taken (it works once); other parameters are ignored
    (RFC 9101 §5: only the pushed ones count). Faults get a page: no redirect URI is trusted yet."""
    client_id, request_uri = params.get("client_id"), params.get("request_uri", "")
    if client_id is None:
        raise InvalidRequest("missing client_id", description="parameter 'client_id' is required")
    client = await p.store.clients.get_client(client_id)
    if client is None:
        raise InvalidRequest(f"unknown client {client_id!r}", description="the client is not registered")
    key = pushed_request_key(client_id, request_uri)
    pushed: PushedRequest | None = await p.store.sessions.take_pushed_request(key)
    if pushed is None or p.now() >= pushed.expires_at:
        raise InvalidRequestUri(f"request_uri of client {client_id!r} unknown, used or expired")
    if pushed.request.redirect_uri not in client.redirect_uris:  # unregistered since it was pushed
        raise InvalidRequest("pushed redirect_uri no longer registered",
                             description="the redirect_uri is not registered for this client")
    return pushed.request


def _only(pairs: Sequence[tuple[str, object]], *names: str) -> dict[str, str]:
    """These parameters, each at most once (else InvalidRequest), whatever is wrong with the rest."""
    return single_valued((name, value) for name, value in pairs if name in names)


def _state_to_send_back(pairs: Sequence[tuple[str, object]]) -> str | None:
    """The state, if the request carries one usable state: of two, which would be the client's?"""
    try:
        return _only(pairs, "state").get("state")
    except InvalidRequest:
        return None


async def _client_and_redirect_uri(p: Provider, params: Mapping[str, str]) -> tuple[Client, str]:
    client_id = params.get("client_id")
    if client_id is None:
        raise InvalidRequest("missing client_id", description="parameter 'client_id' is required")
    client = await p.store.clients.get_client(client_id)
    if client is None:
        raise InvalidRequest(f"unknown client {client_id!r}", description="the client is not registered")
    return client, _redirect_uri(client, params)


def _redirect_uri(client: Client, params: Mapping[str, str]) -> str:
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        if len(client.redirect_uris) != 1:
            raise InvalidRequest("redirect_uri needed",
                                 description="parameter 'redirect_uri' is required for this client")
        return client.redirect_uris[0]
    if redirect_uri not in client.redirect_uris:  # exact string match (RFC 9700 §4.1.1)
        raise InvalidRequest("unregistered redirect_uri",
                             description="the redirect_uri is not registered for this client")
    return redirect_uri


def _checked_request(client: Client, params: Mapping[str, str], redirect_uri: str) -> AuthorizationRequest:
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("missing response_type", description="parameter 'response_type' is required")
    if response_type != "code":
        raise UnsupportedResponseType(f"response_type {response_type!r}")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient(f"client {client.client_id!r} may not use authorization_code")
    if "request" in params:
        raise RequestNotSupported()
    if "request_uri" in params:
        raise RequestUriNotSupported()
    if params.get("response_mode", "query") != "query":
        raise InvalidRequest("response_mode", description="only response_mode=query is supported")
    return AuthorizationRequest(
        client_id=client.client_id, redirect_uri=redirect_uri,
        redirect_uri_given="redirect_uri" in params,
        scope=grant_scope(params.get("scope"), client.scopes), state=params.get("state"),
        nonce=params.get("nonce"), code_challenge=_code_challenge(client, params),
        max_age=_max_age(params), prompt=_prompt(params), dpop_jkt=_dpop_jkt(params),
        acr_values=tuple(dict.fromkeys(params.get("acr_values", "").split())),
        claims=normalised(params.get("claims")))


def _dpop_jkt(params: Mapping[str, str]) -> str | None:
    """RFC 9449 §10: the thumbprint of the DPoP key the code will be redeemed with."""
    jkt = params.get("dpop_jkt")
    if jkt is not None and not DPOP_JKT.fullmatch(jkt):
        raise InvalidRequest("malformed dpop_jkt", description="dpop_jkt must be a SHA-256 JWK thumbprint")
    return jkt


def _code_challenge(client: Client, params: Mapping[str, str]) -> str | None:
    """RFC 7636 §4.3: S256 only (`plain` would show the verifier to whoever sees the URL)."""
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequest("method without challenge", description="code_challenge is missing")
        if client.is_public:
            raise InvalidRequest("public client without PKCE",
                                 description="PKCE (code_challenge with S256) is required for this client")
        return None
    if method != "S256":
        raise InvalidRequest(f"code_challenge_method {method!r}",
                             description="code_challenge_method must be S256")
    if not PKCE_VALUE.match(challenge):
        raise InvalidRequest("malformed code_challenge", description="code_challenge is malformed")
    return challenge


def _max_age(params: Mapping[str, str]) -> int | None:
    raw = params.get("max_age")
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,10}", raw):  # ASCII digits only (str.isdigit takes any script)
        raise InvalidRequest("malformed max_age", description="max_age must be a non-negative integer")
    return int(raw)


def _prompt(params: Mapping[str, str]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(params.get("prompt", "").split()))
    if any(v not in PROMPTS for v in values):
        raise InvalidRequest("unsupported prompt", description="prompt may only be 'none', 'login' or 'consent'")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none with others", description="prompt=none must be used alone")
    return values


async def park(p: Provider, request: AuthorizationRequest, browser_digest: str, resume: str = "", *,
               sub: str = "", confirm: str = "", session: str | None = None) -> str:
    """Keep the request server-side while the user logs in; the login URL names it by a random id.
    It is bound to the browser whose CSRF cookie has `browser_digest`. With `resume` (a page of
    ours: the device page, the account page, the consent page) the login goes back there.
    A step-up names the session's user: `sub` (the second step only) or `confirm` (a password),
    and the session's cookie digest: it may finish only while that session is the browser's, and
    for a user not signed out since (`since_ms`). Every request is parked here (the consent
    page's too), so none lacks those bindings."""
    request_id = secrets.token_urlsafe(24)
    pending = PendingLogin(request, browser_digest, p.now() + LOGIN_TTL, resume, sub, confirm,
                           secret_digest(session) if session else "", p.now_ms() if sub else 0)
    await p.store.sessions.put_pending_login(request_id, pending, LOGIN_TTL)
    return request_id


async def issue_code(p: Provider, request: AuthorizationRequest, session: BrowserSession) -> str:
    """§4.1.2: a single-use code bound to the client, redirect URI, PKCE challenge and session."""
    code = secrets.token_urlsafe(32)
    ttl = p.settings.auth_code_ttl
    record = AuthCode(request=request, sub=session.sub, sid=session.sid, auth_time=session.auth_time,
                      session_created_ms=session.created_ms, expires_at=p.now() + ttl, amr=session.amr,
                      acr=step_up.told_acr(session.amr, request))
    await p.store.sessions.put_code(secret_digest(code), record, ttl)
    await p.store.sessions.note_session_client(session.sid, request.client_id, session.expires_at)  # /account
    return with_params(request.redirect_uri, {"code": code, "state": request.state,
                                              "iss": p.settings.issuer})


def error_location(p: Provider, redirect_uri: str, exc: OAuthError, state: str | None) -> str:
    """§4.1.2.1, with RFC 9207's `iss` so the client knows which server answered."""
    return with_params(redirect_uri, {"error": exc.error, "error_description": exc.description,
                                      "state": state, "iss": p.settings.issuer})


async def park_for_page(p: Provider, browser: str, resume: str, *, sub: str = "", session: str | None = None) -> str:
    """A sign-in for one of our own pages: no client, no code; back to `resume` afterwards. With
    `sub` and `session`, a step-up of that session: the second step only (as in `_answer`)."""
    request = AuthorizationRequest(client_id="", redirect_uri="", redirect_uri_given=False, scope="")
    return await park(p, request, secret_digest(browser), resume, sub=sub, session=session)


# ---- the consent step (the page is oauth/browser/consent.py) ----

class ConsentRequired(OAuthError):
    """OIDC Core §3.1.2.6: prompt=none, and the user has not allowed the client what it asks."""
    error, status, description = "consent_required", 400, "the user has not allowed this application"


async def needed(p: Provider, request: AuthorizationRequest, sub: str) -> bool:
    """Whether this request must ask the user first (see the module's docstring)."""
    client = await p.store.clients.get_client(request.client_id)
    if client is None or not client.asks_consent:
        return False
    if "consent" in request.prompt:
        return True
    consent = await p.store.consents.get_consent(sub, client.client_id)
    # a consent to a client removed since, whose id this one took, does not count
    return consent is None or not consent.counts_for(client.created_at) \
        or not set(request.scope.split()) <= set(consent.scopes)


async def code_or_consent(p: Provider, request: AuthorizationRequest, session: BrowserSession,
                          browser_digest: str, session_secret: str | None) -> str:
    """Where the browser goes once the sign-in satisfies the request: back to the client with a
    code, or to the consent page (prompt=none: ConsentRequired, told at the redirect URI). The
    consent request is parked for the session (`session_secret`, its cookie): it is no sign-in
    (signin.sign_in_request refuses it), and it is answered only while that session stands."""
    if not await needed(p, request, session.sub):
        return await issue_code(p, request, session)
    if "none" in request.prompt:
        raise ConsentRequired(f"prompt=none; {request.client_id!r} not allowed {request.scope!r}")
    request_id = await park(p, request, browser_digest, CONSENT_PATH, sub=session.sub, session=session_secret)
    return CONSENT_PATH + "?" + urlencode({"request": request_id})
