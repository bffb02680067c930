"""Django integration: a middleware that verifies each request's Bearer or DPoP token with a
SyncVerifier, a `require` decorator for views, and the back-channel logout receiver. Answers:
tokensrv.verify.http.

    # settings.py
    MIDDLEWARE = [..., "tokensrv.verify.django.TokenMiddleware"]
    TOKENSRV_VERIFY = {"issuer": "http://127.0.0.1:8080", "audience": "orders",
                       "redis_url": "redis://127.0.0.1:6379/0", "realm": "orders"}
    # optional: "public_url" (behind a proxy: what DPoP proofs name), and any TokenVerifier option

    # views.py
    @require(scopes=["orders:read"])
    def list_orders(request):
        return JsonResponse({"sub": claims_of(request)["sub"]})

    # urls.py
    path("backchannel-logout", logout_view(end_sessions))

One SyncVerifier per process, made from TOKENSRV_VERIFY when Django loads the middleware (or on
first use), and made again if a test overrides the setting. Sync views only: an async view would
block its event loop on the verifier.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import http
from .sync import SyncVerifier

SETTING = "TOKENSRV_VERIFY"
F = TypeVar("F", bound=Callable[..., Any])
_ADAPTER_OPTIONS = ("realm", "public_url")
_ATTRIBUTE = "tokensrv_verified"  # on the request: its http.Verified

_lock = threading.Lock()
_verifier: SyncVerifier | None = None


def verifier() -> SyncVerifier:
    """The process's SyncVerifier, made from settings.TOKENSRV_VERIFY and started on first use."""
    global _verifier
    with _lock:
        if _verifier is None:
            options = {k: v for k, v in _config().items() if k not in _ADAPTER_OPTIONS}
            _verifier = SyncVerifier(**options)
    return _verifier.start()


def _config() -> dict[str, Any]:
    config = getattr(settings, SETTING, None)
    if not isinstance(config, dict) or "issuer" not in config or "audience" not in config:
        raise ValueError(f"settings.{SETTING} must be a dict with at least issuer and audience")
    return config


def _reset(*, setting: str, **kwargs: Any) -> None:
    """A changed TOKENSRV_VERIFY (override_settings in a test) gets a verifier of its own."""
    global _verifier
    if setting != SETTING:
        return
    with _lock:
        stale, _verifier = _verifier, None
    if stale is not None:
        stale.close()


setting_changed.connect(_reset)


class TokenMiddleware:
    """Verify the token of every request that carries one (a bad one is refused here); a request
    without one passes through: `require` decides whether its view needs one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        verifier()  # once per process, when Django loads its middleware

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "Authorization" in request.headers:
            try:
                verified_of(request)
            except http.Refused as refused:
                return to_response(refused.answer)
        return self.get_response(request)


def verified_of(request: HttpRequest) -> http.Verified:
    """The request's verified token (verified once per request), else http.Refused."""
    verified: http.Verified | None = getattr(request, _ATTRIBUTE, None)
    if verified is None:
        config = _config()
        verified = verifier().verify_request(presented(request, config.get("public_url")),
                                             config.get("realm", "api"))
        setattr(request, _ATTRIBUTE, verified)  # HttpRequest declares no such attribute
    return verified


def presented(request: HttpRequest, public_url: str | None) -> http.Presented:
    url = request.build_absolute_uri(request.path) if public_url is None else public_url.rstrip("/") + request.path
    authorization = request.headers.get("Authorization")
    proof = request.headers.get("DPoP")  # WSGI joins a repeated header into one value: refused as malformed
    return http.Presented(request.method or "GET", url, [] if authorization is None else [authorization],
                          [] if proof is None else [proof])


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorate a view: it runs only for a valid token carrying every scope and role listed."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                http.check_access(verified_of(request), needed_scopes, needed_roles)
            except http.Refused as refused:
                return to_response(refused.answer)
            return view(request, *args, **kwargs)
        return cast(F, wrapper)
    return decorate


def claims_of(request: HttpRequest) -> dict[str, Any]:
    """The verified claims of `request`; for views behind `require`."""
    verified: http.Verified = getattr(request, _ATTRIBUTE)
    return verified.claims


def logout_view(on_logout: Callable[[dict[str, Any]], None], audience: str | None = None
                ) -> Callable[[HttpRequest], HttpResponse]:
    """A view for the back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.5): it checks the
    POSTed logout token, calls `on_logout(claims)` (end the sessions of `claims["sid"]`, or of
    `claims["sub"]` without one) and answers 200; a bad token gets 400. tokensrv's POST carries
    no CSRF token: the view is exempt, its logout token is what authenticates it.
    `audience`: this relying party's client_id, when it is not the verifier's audience."""

    def backchannel_logout(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        body = request.read(http.MAX_LOGOUT_BODY + 1)
        try:
            claims = verifier().receive_logout(http.logout_tokens(request.content_type, body), audience)
        except http.Refused as refused:
            return to_response(refused.answer)
        on_logout(claims)
        return to_response(http.LOGGED_OUT)
    return cast(Callable[[HttpRequest], HttpResponse], csrf_exempt(backchannel_logout))


def to_response(answer: http.Answer) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status,
                            content_type=answer.content_type if answer.body else None)
    challenges = [value for name, value in answer.headers if name == "WWW-Authenticate"]
    for name, value in answer.headers:
        if name != "WWW-Authenticate":
            response[name] = value
    if challenges:  # Django keeps one value per header: the challenges comma-separated (RFC 9110 §11.6.1)
        response["WWW-Authenticate"] = ", ".join(challenges)
    return response
