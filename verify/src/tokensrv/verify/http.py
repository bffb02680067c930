"""What every HTTP integration of the verifier shares (aiohttp, ASGI, Flask, Django), whatever its
framework: reading a request's credentials (RFC 6750 §2.1, RFC 9449 §7), verifying them, checking
a route's scopes and roles, the answer to a refusal (RFC 6750 §3, RFC 9449 §7.1), and the
back-channel logout receiver's checks and answers (OIDC Back-Channel Logout 1.0 §2.8).

A refusal is raised as `Refused`, carrying an `Answer` (status, headers, JSON body) that each
adapter sends as it is: the frameworks differ only in how they read a request and send a response.

Answers: no token -> 401 `WWW-Authenticate: Bearer realm="..."` (no error code, RFC 6750 §3.1)
with a second challenge `DPoP realm="...", algs="..."` (RFC 9449 §7.1); a malformed Authorization
header -> 400 `error="invalid_request"`; a bad token -> 401 `error="invalid_token"`; a missing
scope -> 403 `error="insufficient_scope", scope="..."`; a missing role -> 403; a verifier unable
to decide -> 503 with Retry-After. A request with the DPoP scheme, or a DPoP-bound token presented
as Bearer, is answered in the DPoP scheme's challenge. Bodies are JSON `{"error",
"error_description"}` with fixed descriptions: the real reason is logged (debug), never sent.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .claims import require_roles, require_scopes
from .dpop import ALGORITHMS as DPOP_ALGORITHMS
from .errors import (
    InsufficientRole,
    InsufficientScope,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    InvalidToken,
    VerifierUnavailable,
)

log = logging.getLogger("tokensrv.verify")

# RFC 6750 §2.1 and RFC 9449 §7.1: the scheme, then a b64token
_CREDENTIALS = re.compile(r"(Bearer|DPoP) +([A-Za-z0-9._~+/-]+=*)", re.IGNORECASE)
_SCHEMES = ("bearer", "dpop")
FORM = "application/x-www-form-urlencoded"
MAX_LOGOUT_BODY = 16384  # bytes: a logout token is at most MAX_TOKEN_BYTES (8 KiB), form-encoded


class Verifies(Protocol):
    """What the request flow needs of a verifier: TokenVerifier, or a SyncVerifier's inside its loop."""
    dpop_algorithms: frozenset[str]

    def verify(self, token: str, *, scopes: Iterable[str] = (), roles: Iterable[str] = (),
               dpop_proof: str | None = None, method: str = "", url: str = "") -> Awaitable[dict[str, Any]]: ...

    def verify_logout_token(self, token: str, *, audience: str | None = None,
                            refuse_replay: bool = True) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, ready for any framework to send."""
    status: int
    headers: tuple[tuple[str, str], ...]  # WWW-Authenticate may appear twice: one per challenge
    body: bytes
    error: str  # the body's `error` ("" for a 200): what traces and logs say about the outcome

    content_type = "application/json"


class Refused(Exception):
    """The request is refused: send `answer`."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.error)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class Presented:
    """What a request presents: its method, the URL its client used (what a DPoP proof's htu names),
    and every value of its Authorization and DPoP headers."""
    method: str
    url: str
    authorization: Sequence[str]
    dpop: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Verified:
    """A request's verified token: its claims, and what a later refusal (a route's scopes) needs."""
    claims: dict[str, Any]
    scheme: str  # "bearer" or "dpop"
    realm: str
    dpop_algs: str


async def verify_request(verifier: Verifies, request: Presented, realm: str) -> Verified:
    """The request's token, verified (its DPoP proof too); else Refused with the answer."""
    algs = dpop_algs(verifier.dpop_algorithms)
    scheme = "bearer"
    try:
        scheme, token = credentials(request.authorization, realm, algs)
        proof = dpop_proof(request.dpop) if scheme == "dpop" else None
        claims = await verifier.verify(token, dpop_proof=proof, method=request.method, url=request.url)
    except InvalidToken as exc:
        log.debug("%s %s: %s: %s", request.method, urlsplit(request.url).path, type(exc).__name__, exc.detail)
        raise refusal(exc, scheme, realm, algs) from None
    return Verified(claims, scheme, realm, algs)


def check_access(verified: Verified, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> None:
    """Refused (403) unless the token carries every scope and role listed."""
    try:
        require_scopes(verified.claims, *scopes)
        require_roles(verified.claims, *roles)
    except InvalidToken as exc:
        raise refusal(exc, verified.scheme, verified.realm, verified.dpop_algs) from None


def refusal(exc: InvalidToken, scheme: str, realm: str, algs: str) -> Refused:
    dpop = scheme == "dpop" or isinstance(exc, (InvalidDPoPBinding, InvalidDPoPProof))
    return Refused(error_answer(exc, realm, algs if dpop else None))


def credentials(authorization: Sequence[str], realm: str, algs: str) -> tuple[str, str]:
    """("bearer" or "dpop", the token) of the Authorization header; else Refused: 401 with the
    challenges when there is no token (none, or another scheme), 400 when the header is malformed."""
    if not authorization or (len(authorization) == 1 and authorization[0].split(" ", 1)[0].lower() not in _SCHEMES):
        raise Refused(challenge(realm, algs))
    match = _CREDENTIALS.fullmatch(authorization[0]) if len(authorization) == 1 else None
    if match is None:
        raise Refused(json_answer(400, [f"Bearer realm={quote(realm)}, error=\"invalid_request\""],
                                  "invalid_request", "the Authorization header is malformed"))
    return match.group(1).lower(), match.group(2)


def dpop_proof(values: Sequence[str]) -> str:
    """The one DPoP header of a request with the DPoP scheme (RFC 9449 §4.3: exactly one)."""
    if len(values) != 1:
        raise InvalidDPoPProof("no DPoP header" if not values else "DPoP header repeated")
    return values[0]


def dpop_algs(accepted: Iterable[str]) -> str:
    """The `algs` of a DPoP challenge: the accepted proof algorithms, in tokensrv's order."""
    allowed = frozenset(accepted)
    return " ".join(alg for alg in DPOP_ALGORITHMS if alg in allowed)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(realm: str, algs: str) -> Answer:
    """RFC 6750 §3.1: a request without authentication gets no error code; RFC 9449 §7.1: a
    second challenge says DPoP is accepted too, with which algorithms."""
    return json_answer(401, [f"Bearer realm={quote(realm)}", f"DPoP realm={quote(realm)}, algs={quote(algs)}"],
                       "unauthorized", "a bearer access token is required")


def error_answer(exc: InvalidToken, realm: str, algs: str | None = None) -> Answer:
    """The answer to `exc`; with `algs`, in the DPoP scheme's challenge (RFC 9449 §7.1)."""
    scheme = "Bearer" if algs is None else "DPoP"
    challenged = f"{scheme} realm={quote(realm)}, error={quote(exc.error)}"
    shown_algs = "" if algs is None else f", algs={quote(algs)}"
    if isinstance(exc, InsufficientScope):
        return json_answer(403, [f"{challenged}, scope={quote(' '.join(exc.scopes))}"], exc.error, exc.description)
    if isinstance(exc, InsufficientRole):
        return json_answer(403, [], exc.error, exc.description)
    if isinstance(exc, VerifierUnavailable):
        return json_answer(503, [], exc.error, exc.description, retry_after=1)
    if isinstance(exc, InvalidDPoPProof):
        return json_answer(401, [challenged + shown_algs], exc.error, exc.description)
    return json_answer(401, [challenged + shown_algs], "invalid_token", exc.description)


def json_answer(status: int, challenges: list[str], error: str, description: str,
                retry_after: int | None = None) -> Answer:
    headers = [("Cache-Control", "no-store")]
    headers += [("WWW-Authenticate", c) for c in challenges]  # one header each (RFC 9110 §11.6.1 allows either)
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    body = json.dumps({"error": error, "error_description": description}).encode()
    return Answer(status, tuple(headers), body, error)


# ---- the back-channel logout receiver (OIDC Back-Channel Logout 1.0 §2.5, §2.8) ----

LOGGED_OUT = Answer(200, (("Cache-Control", "no-store"),), b"", "")


def logout_tokens(content_type: str | None, body: bytes) -> list[str]:
    """The `logout_token` values of a form-encoded POST body (§2.5); none from any other body."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM or len(body) > MAX_LOGOUT_BODY:
        return []
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, max_num_fields=16, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return []
    return fields.get("logout_token", [])


async def receive_logout(verifier: Verifies, tokens: Sequence[str], audience: str | None = None) -> dict[str, Any]:
    """The claims of the request's one valid logout token; else Refused with §2.8's 400."""
    try:
        if len(tokens) != 1:
            raise InvalidToken("no logout_token, or more than one")
        return await verifier.verify_logout_token(tokens[0], audience=audience)
    except VerifierUnavailable as exc:  # not the token's fault: tokensrv delivers it again later
        raise Refused(error_answer(exc, "logout")) from None
    except InvalidToken as exc:
        log.debug("back-channel logout refused: %s: %s", type(exc).__name__, exc.detail)
        raise Refused(json_answer(400, [], "invalid_request", "the logout token is invalid")) from None
