"""OAuth errors (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1): one class per error code.

`description` is fixed public text; `detail` is the real reason, logged and never sent.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType


class OAuthError(Exception):
    error, status, description = "server_error", 500, "the server could not complete the request"
    headers: Mapping[str, str] = MappingProxyType({})  # read-only: shared by every instance

    def __init__(self, detail: str = "", *, description: str | None = None) -> None:
        super().__init__(detail or self.error)
        self.detail = detail
        if description is not None:
            self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error, status = "invalid_request", 400
    description = "the request is missing or repeats a parameter, or is malformed"


class InvalidClient(OAuthError):
    error, status, description = "invalid_client", 401, "client authentication failed"
    headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": 'Basic realm="tokensrv", charset="UTF-8"'})


class InvalidGrant(OAuthError):
    error, status, description = "invalid_grant", 400, "grant is invalid, expired or revoked"


class UnauthorizedClient(OAuthError):
    error, status, description = "unauthorized_client", 400, "the client may not use this grant type"


class UnsupportedGrantType(OAuthError):
    error, status, description = "unsupported_grant_type", 400, "the grant type is not supported"


class InvalidScope(OAuthError):
    error, status, description = "invalid_scope", 400, "the requested scope is invalid or exceeds what is allowed"


class UnsupportedTokenType(OAuthError):
    error, status, description = "unsupported_token_type", 400, "the token type is not supported"


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5: a DPoP proof at the token endpoint that is missing (when one is required),
    malformed, replayed or not for this request."""
    error, status, description = "invalid_dpop_proof", 400, "the DPoP proof is missing or invalid"


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: the proof must carry the server's current nonce, sent in DPoP-Nonce."""
    error, status, description = "use_dpop_nonce", 400, "the DPoP proof must carry the server's nonce"

    def __init__(self, nonce: str, detail: str = "") -> None:
        super().__init__(detail)
        self.headers = {"DPoP-Nonce": nonce}


class InvalidToken(OAuthError):
    """RFC 6750 §3.1, for bearer-protected endpoints (userinfo)."""
    error, status, description = "invalid_token", 401, "the access token is invalid, expired or revoked"
    headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": 'Bearer error="invalid_token"'})


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a registration (or RFC 7592 update) whose metadata we refuse; the
    description says which field and why (the client sent it: nothing secret in it)."""
    error, status, description = "invalid_client_metadata", 400, "the client metadata is invalid"


class InvalidRedirectUri(InvalidClientMetadata):
    """RFC 7591 §3.2.2: one of the redirect URIs is refused."""
    error, description = "invalid_redirect_uri", "a redirect URI is invalid"


class InsufficientScope(OAuthError):
    error, status, description = "insufficient_scope", 403, "the access token lacks the required scope"
    headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": 'Bearer error="insufficient_scope"'})


class AccessDenied(OAuthError):
    error, status, description = "access_denied", 403, "the request was denied"


class LoginRequired(OAuthError):
    error, status, description = "login_required", 400, "the user must log in"


class UnsupportedResponseType(OAuthError):
    error, status, description = "unsupported_response_type", 400, "only response_type=code is supported"


class SlowDown(OAuthError):
    """Too many attempts: 429 with Retry-After (RFC 6585 §4)."""
    error, status, description = "slow_down", 429, "too many attempts, try again later"

    def __init__(self, retry_after: int, detail: str = "", *, what: str = "failed sign-in attempts") -> None:
        """`what` there were too many of, for the page a person sees (server/web/pages.py)."""
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after))}
        self.what = what


class TemporarilyUnavailable(OAuthError):
    """The store is unreachable: fail closed with 503 (RFC 6749 §4.1.2.1 names the code)."""
    error, status, description = "temporarily_unavailable", 503, "the service is temporarily unavailable"
    headers: Mapping[str, str] = MappingProxyType({"Retry-After": "1"})


class NotFound(OAuthError):
    error, status, description = "not_found", 404, "no such resource"


class MethodNotAllowed(OAuthError):
    """405 with the methods the resource does serve in Allow (RFC 9110 §15.5.6: MUST)."""
    error, status, description = "method_not_allowed", 405, "method not allowed on this resource"

    def __init__(self, allowed: Iterable[str], detail: str = "") -> None:
        super().__init__(detail)
        self.headers = {"Allow": ", ".join(sorted(allowed))}


class PayloadTooLarge(OAuthError):
    error, status, description = "invalid_request", 413, "the request body is too large"


class RequestTimeout(OAuthError, TimeoutError):
    """RFC 9110 §15.5.9: the body did not arrive in time (TOKENSRV_BODY_TIMEOUT); the connection
    closes. A TimeoutError too, so that aiohttp's read of the unread body after the answer ends
    quietly on it (any other exception there is logged as unhandled)."""
    error, status, description = "invalid_request", 408, "the request was not received in time"
    headers: Mapping[str, str] = MappingProxyType({"Connection": "close"})


# ---- RFC 8628 §3.5 (device access token response) and RFC 8693 §2.2.2 (token exchange) ----
# Token endpoint errors: 400 (RFC 6749 §5.2), unlike the 429 SlowDown and 403 AccessDenied above.

class AuthorizationPending(OAuthError):
    error, status, description = "authorization_pending", 400, "the user has not yet approved the device"


class DeviceSlowDown(OAuthError):
    error, status, description = "slow_down", 400, "polling too fast: wait 5 seconds longer between requests"


class DeviceAccessDenied(OAuthError):
    error, status, description = "access_denied", 400, "the user denied the device"


class ExpiredDeviceCode(OAuthError):
    """RFC 8628 §3.5 expired_token; named for what expired (tokensrv.verify.ExpiredToken is a JWT's exp)."""
    error, status, description = "expired_token", 400, "the device code has expired: start again"


class InvalidTarget(OAuthError):
    error, status, description = "invalid_target", 400, "the requested audience or resource is not allowed"
