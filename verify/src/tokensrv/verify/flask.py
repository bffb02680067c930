"""Flask integration: verify each request's Bearer or DPoP token with a SyncVerifier, a `require`
decorator for views, and the back-channel logout receiver. Answers: tokensrv.verify.http.

    verifier = SyncVerifier(issuer, "orders", redis_url)
    TokenAuth(app, verifier, realm="orders")       # or TokenAuth(...).init_app(app) in a factory

    @app.get("/orders")
    @require(scopes=["orders:read"])
    def list_orders() -> dict:
        return {"sub": claims_of()["sub"]}

    app.add_url_rule("/backchannel-logout", view_func=logout_view(end_sessions), methods=["POST"])

A request carrying an Authorization header is verified before its view (a bad token is refused
there, whatever the view); `require` refuses a request without one, or without the scopes and
roles listed. The verifier's thread starts in init_app, once per process.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request

from . import http
from .sync import SyncVerifier

EXTENSION = "tokensrv.verify"
F = TypeVar("F", bound=Callable[..., Any])


class TokenAuth:
    """The verifier, realm and public URL of one Flask app.
    `public_url`: the scheme and host (and any path prefix) clients reach this service at, when
    that is not what the request says (behind a proxy); DPoP proofs name that URL."""

    def __init__(self, app: Flask | None = None, verifier: SyncVerifier | None = None, *, realm: str = "api",
                 public_url: str | None = None) -> None:
        self.verifier, self.realm = verifier, realm
        self.public_url = None if public_url is None else public_url.rstrip("/")
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if self.verifier is None:
            raise ValueError("TokenAuth needs a SyncVerifier")
        app.extensions[EXTENSION] = self
        app.before_request(_verify_presented)
        self.verifier.start()

    def verified(self) -> http.Verified:
        """The request's verified token (verified once per request), else http.Refused."""
        verified: http.Verified | None = g.get("tokensrv_verified")
        if verified is None:
            assert self.verifier is not None
            verified = self.verifier.verify_request(self._presented(), self.realm)
            g.tokensrv_verified = verified
        return verified

    def _presented(self) -> http.Presented:
        url = request.base_url if self.public_url is None else self.public_url + request.path
        return http.Presented(request.method, url, request.headers.getlist("Authorization"),
                              request.headers.getlist("DPoP"))


def _auth() -> TokenAuth:
    return cast(TokenAuth, current_app.extensions[EXTENSION])


def _verify_presented() -> Response | None:
    """before_request: verify the token of a request that carries one; a request without one
    passes: `require` decides whether its view needs one."""
    if "Authorization" not in request.headers:
        return None
    try:
        _auth().verified()
    except http.Refused as refused:
        return to_response(refused.answer)
    return None


def require(scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorate a view: it runs only for a valid token carrying every scope and role listed."""
    needed_scopes, needed_roles = tuple(scopes), tuple(roles)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                http.check_access(_auth().verified(), needed_scopes, needed_roles)
            except http.Refused as refused:
                return to_response(refused.answer)
            return view(*args, **kwargs)
        return cast(F, wrapper)
    return decorate


def claims_of() -> dict[str, Any]:
    """The verified claims of the current request; for views behind `require`."""
    verified: http.Verified = g.tokensrv_verified
    return verified.claims


def logout_view(on_logout: Callable[[dict[str, Any]], None], audience: str | None = None
                ) -> Callable[[], Response]:
    """A view for the back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.5; route it for
    POST): it checks the logout token, calls `on_logout(claims)` (end the sessions of
    `claims["sid"]`, or of `claims["sub"]` without one) and answers 200; a bad token gets 400.
    `audience`: this relying party's client_id, when it is not the verifier's audience."""

    def backchannel_logout() -> Response:
        auth = _auth()
        assert auth.verifier is not None
        body = request.stream.read(http.MAX_LOGOUT_BODY + 1)
        try:
            claims = auth.verifier.receive_logout(http.logout_tokens(request.content_type, body), audience)
        except http.Refused as refused:
            return to_response(refused.answer)
        on_logout(claims)
        return to_response(http.LOGGED_OUT)
    return backchannel_logout


def to_response(answer: http.Answer) -> Response:
    response = Response(answer.body, status=answer.status,
                        content_type=answer.content_type if answer.body else None)
    for name, value in answer.headers:
        response.headers.add(name, value)
    return response
