"""What verification raises: `InvalidToken` and one subclass per reason.

`description` is fixed text, safe to send to the caller (RFC 6750 `error_description`); `detail`
is the real reason, for logs only.
"""
from __future__ import annotations

from collections.abc import Iterable


class InvalidToken(Exception):
    error = "invalid_token"  # the RFC 6750 §3.1 error code
    description = "the access token is invalid"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.description)
        self.detail = detail or self.description


class MalformedToken(InvalidToken):
    description = "the access token is malformed"


class InvalidSignature(InvalidToken):
    description = "the access token signature is invalid"


class UnknownKey(InvalidSignature):
    description = "the access token is signed by an unknown key"


class InvalidClaims(InvalidToken):
    description = "the access token claims are invalid"


class ExpiredToken(InvalidClaims):
    description = "the access token has expired"


class NotYetValid(InvalidClaims):
    description = "the access token is not valid yet"


class RevokedToken(InvalidToken):
    description = "the access token has been revoked"


class InvalidDPoPProof(InvalidToken):
    """RFC 9449 §7.1: the DPoP proof is missing, malformed, replayed, or not for this request."""
    error = "invalid_dpop_proof"
    description = "the DPoP proof is invalid"


class InvalidDPoPBinding(InvalidToken):
    """The token and the proof do not belong together: a DPoP-bound token presented as a bearer
    token, a proof signed by another key than the token's `cnf.jkt`, or an unbound token presented
    with the DPoP scheme (RFC 9449 §7.1-7.2)."""
    description = "the access token is not bound to the DPoP proof's key"


class InsufficientScope(InvalidToken):
    """The token is valid but lacks a scope the resource needs (RFC 6750 §3.1: 403)."""
    error = "insufficient_scope"
    description = "the access token lacks the required scope"

    def __init__(self, scopes: Iterable[str], detail: str = "") -> None:
        self.scopes = tuple(scopes)
        super().__init__(detail or "missing scope " + " ".join(self.scopes))


class InsufficientRole(InvalidToken):
    """The token is valid but its subject lacks a role the resource needs (403)."""
    error = "access_denied"
    description = "the access token lacks the required role"

    def __init__(self, roles: Iterable[str], detail: str = "") -> None:
        self.roles = tuple(roles)
        super().__init__(detail or "missing role " + " ".join(self.roles))


class VerifierUnavailable(InvalidToken):
    """The verifier cannot decide now: keys unreachable for a new `kid`, or the revocation mirror
    disconnected for longer than the service allows. Not the token's fault: answer 503."""
    error = "temporarily_unavailable"
    description = "token verification is temporarily unavailable"
