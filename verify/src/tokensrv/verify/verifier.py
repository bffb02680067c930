"""TokenVerifier: offline verification of tokensrv's JWT access tokens (RFC 9068).

Per token: strict parsing, the header checked against the service's algorithm allow-list (a
header seen before is not parsed again), one signature check on a cached public key, the claims,
then the revocation mirror. No network call unless the token names a `kid` we do not know.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .claims import (
    ACCESS_TOKEN_TYPE,
    DEFAULT_MAX_TOKEN_LIFETIME,
    check_claims,
    check_header,
    require_roles,
    require_scopes,
)
from .counters import Metrics, Unmeasured, VerifierState
from .dpop import ALGORITHMS as DPOP_ALGORITHMS
from .dpop import DEFAULT_WINDOW as DPOP_WINDOW
from .dpop import ReplayCache, check_proof
from .errors import (
    ExpiredToken,
    InsufficientRole,
    InsufficientScope,
    InvalidClaims,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    InvalidToken,
    RevokedToken,
    UnknownKey,
    VerifierUnavailable,
)
from .jwks import HttpJWKSFetcher, JWKSFetcher, KeyCache
from .jws import SUPPORTED_ALGORITHMS, PublicKey, b64url_decode, json_object, split
from .logout import DEFAULT_MAX_AGE as LOGOUT_MAX_AGE
from .logout import LOGOUT_TOKEN_TYPE, check_logout_claims

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .feed import FeedEntry
    from .mirror import RevocationMirror

log = logging.getLogger("tokensrv.verify")

MAX_TOKEN_BYTES = 8192
HEADER_CACHE_SIZE = 256


class TokenVerifier:
    """Verify access tokens of one issuer for one audience.

    algorithms: the allow-list, set by the service (never read from a token). RS256 is what
        tokensrv signs with by default; add "ES256" or "EdDSA" if its TOKENSRV_KEY_ALGORITHM says so.
    leeway: seconds of clock skew tolerated on exp, nbf and iat.
    max_token_lifetime: the longest `exp - iat` accepted (default: a day, the most tokensrv's
        TOKENSRV_ACCESS_TOKEN_TTL and TOKENSRV_ID_TOKEN_TTL allow); a token living longer, or one
        with an `iat` before 1970, was not issued by tokensrv and is refused (InvalidClaims).
    redis_url: follow tokensrv's revocation feed (else revocations are not checked); needs redis-py
        (tokensrv-verify's `redis` extra).
    max_disconnected: while the mirror is disconnected, keep verifying with the last known state
        (None, the default) or, after this many seconds, refuse with VerifierUnavailable.
    fetcher: how the JWKS is fetched (default: discovery then the jwks_uri, over aiohttp).
    registry: the prometheus_client.CollectorRegistry the metrics go to (None: the global registry,
        which any number of verifiers may share: see tokensrv.verify.metrics; no metrics at all
        when prometheus-client is not installed).
    dpop_algorithms, dpop_window, dpop_replay_cache_size: for DPoP-bound tokens (RFC 9449): the
        proof algorithms accepted, how far a proof's iat may be from our clock, and how many proof
        jtis the in-memory replay cache holds (see tokensrv.verify.dpop.ReplayCache).
    tracer_provider: an OpenTelemetry TracerProvider for the JWKS fetches' spans and (unless
        setup() is given another) the middleware's; None: the global one, if the service set one
        up (see tokensrv.verify.tracing), else no tracing.
    """

    def __init__(self, issuer: str, audience: str, redis_url: str | None = None, *,
                 algorithms: Iterable[str] = ("RS256",), leeway: float = 30.0,
                 max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME,
                 token_type: str | None = ACCESS_TOKEN_TYPE, jwks_uri: str | None = None,
                 fetcher: JWKSFetcher | None = None, refetch_interval: float = 5.0,
                 max_disconnected: float | None = None, clock: Callable[[], float] = time.time,
                 registry: CollectorRegistry | None = None, max_token_bytes: int = MAX_TOKEN_BYTES,
                 dpop_algorithms: Iterable[str] = DPOP_ALGORITHMS, dpop_window: float = DPOP_WINDOW,
                 dpop_replay_cache_size: int = 100_000, tracer_provider: Any = None) -> None:
        self.algorithms = frozenset(algorithms)
        if not self.algorithms or not self.algorithms <= SUPPORTED_ALGORITHMS:
            raise ValueError(f"algorithms must be among {sorted(SUPPORTED_ALGORITHMS)}")
        self.issuer, self.audience = issuer, audience
        self.leeway, self.token_type = leeway, token_type
        self.max_token_lifetime = max_token_lifetime
        self.max_disconnected = max_disconnected
        self.max_token_bytes = max_token_bytes
        self.dpop_algorithms = frozenset(dpop_algorithms)
        if not self.dpop_algorithms <= set(DPOP_ALGORITHMS):
            raise ValueError(f"dpop_algorithms must be among {list(DPOP_ALGORITHMS)}")
        self.dpop_window = dpop_window
        self.dpop_replays = ReplayCache(dpop_window, dpop_replay_cache_size)
        self.logout_replays = ReplayCache(LOGOUT_MAX_AGE + leeway, dpop_replay_cache_size)
        self.metrics = verifier_metrics(registry, audience)
        self._clock = clock
        self._headers: dict[str, tuple[str, str]] = {}  # header segment -> (alg, kid), checked
        self.tracer_provider = tracer_provider
        self.fetcher = fetcher or HttpJWKSFetcher(
            issuer, jwks_uri, on_request=lambda kind: self.metrics.issuer_requests.labels(kind).inc(),
            tracer_provider=tracer_provider)
        self.mirror = None if redis_url is None else _mirror(redis_url, self.metrics, clock, leeway)
        self.keys = KeyCache(self.fetcher, self.algorithms, clock, refetch_interval,
                             excluded=self._kid_revoked, on_fetch=self._fetched)
        if self.mirror is not None:
            self.mirror.on_revocation(self._drop_revoked_key)
        self._refresher: asyncio.Task[None] | None = None
        self.metrics.watch(self)

    # ---- lifecycle ----

    async def start(self) -> None:
        """Fetch the keys and load the deny-list once; failures are logged and retried in the
        background (check `ready`)."""
        self.metrics.watch(self)  # again, if it was closed before
        await self.keys.refresh()
        if self.mirror is not None:
            await self.mirror.start()
        self._refresher = asyncio.create_task(self.keys.run(), name="tokensrv-verify-jwks")

    async def close(self) -> None:
        self.metrics.forget(self)  # its state gauges go: a closed verifier has no state to report
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.keys.close()
        if self.mirror is not None:
            await self.mirror.close()
        if isinstance(self.fetcher, HttpJWKSFetcher):
            await self.fetcher.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def ready(self) -> bool:
        """Keys loaded, and (when following revocations) the mirror connected and current."""
        return self.keys.loaded and (self.mirror is None or self.mirror.connected)

    # ---- verification ----

    async def verify(self, token: str, *, scopes: Iterable[str] = (), roles: Iterable[str] = (),
                     dpop_proof: str | None = None, method: str = "", url: str = "") -> dict[str, Any]:
        """The claims of a valid, unrevoked access token carrying `scopes` and `roles`; otherwise
        InvalidToken or one of its subclasses.

        A DPoP-bound token (one with `cnf.jkt`, RFC 9449) needs `dpop_proof`, the request's DPoP
        header, with the request's `method` and `url` (the URL the client used); without one it is
        refused (InvalidDPoPBinding), as is an unbound token presented with a proof."""
        try:
            claims = await self._verify(token)
            if dpop_proof is not None or "cnf" in claims:
                self._check_dpop(claims, token, dpop_proof, method, url)
            if scopes:  # nothing asked (the usual case): not even the token's scope is split
                require_scopes(claims, *scopes)
            if roles:
                require_roles(claims, *roles)
        except InvalidToken as exc:
            self.metrics.verifications[_result(exc)].inc()
            raise
        self.metrics.verifications["valid"].inc()
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        parts = split(token, self.max_token_bytes)
        alg, kid = self._header(parts.header_segment)
        now = self._clock()
        if self.mirror is not None:
            self._check_mirror(now)
            if self.mirror.state.kid_revoked(kid, now):
                raise RevokedToken(f"signing key {kid} is revoked")
        key = self.keys.get(kid)
        if key is None:
            key = await self._unknown_kid(kid)
        key.verify(alg, parts.signing_input, parts.signature)
        claims = json_object(parts.payload, "payload", self.max_token_bytes)
        check_claims(claims, self.issuer, self.audience, now, self.leeway, self.max_token_lifetime)
        if self.mirror is not None:
            reason = self.mirror.state.revoked(claims["jti"], claims.get("sid"), claims["sub"],
                                               claims["iat"], now)
            if reason is not None:
                raise RevokedToken(f"revoked by {reason}")
        return claims

    async def verify_logout_token(self, token: str, *, audience: str | None = None,
                                  refuse_replay: bool = True) -> dict[str, Any]:
        """The claims of a valid back-channel logout token (OIDC Back-Channel Logout 1.0 §2.6) sent
        to the relying party `audience` (its client_id; default: this verifier's audience); else
        InvalidToken or a subclass. The signature is checked against the issuer's JWKS like an
        access token's; then typ logout+jwt, iss, aud, iat, exp, the back-channel event, sub or
        sid, no nonce. With `refuse_replay` (the default), a `jti` seen before by this verifier
        is refused. The revocation mirror is not consulted: a logout is never "revoked".

        What the caller does next: end its sessions with this `sid` (or, without one, of `sub`),
        and answer 200; on InvalidToken, answer 400 (§2.8)."""
        parts = split(token, self.max_token_bytes)
        header = json_object(b64url_decode(parts.header_segment), "header", self.max_token_bytes)
        alg, kid = check_header(header, self.algorithms, LOGOUT_TOKEN_TYPE)
        now = self._clock()
        if self._kid_revoked(kid):
            raise RevokedToken(f"signing key {kid} is revoked")
        key = self.keys.get(kid) or await self._unknown_kid(kid)
        key.verify(alg, parts.signing_input, parts.signature)
        claims = json_object(parts.payload, "payload", self.max_token_bytes)
        audience = self.audience if audience is None else audience
        check_logout_claims(claims, self.issuer, audience, now, self.leeway, LOGOUT_MAX_AGE,
                            self.max_token_lifetime)
        if refuse_replay and not self.logout_replays.add(audience, claims["jti"], claims["iat"], now):
            raise InvalidClaims("the logout token was presented before")
        return claims

    def _check_dpop(self, claims: dict[str, Any], token: str, proof: str | None, method: str,
                    url: str) -> None:
        """RFC 9449 §7.1: the proof is valid for this request and this token, new, and signed by
        the key the token is bound to."""
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if type(cnf) is dict else None
        if type(jkt) is not str:
            raise InvalidDPoPBinding("cnf without a jkt" if cnf is not None else "an unbound token with a DPoP proof")
        if proof is None:
            raise InvalidDPoPBinding("a DPoP-bound token presented as a bearer token")
        now = self._clock()
        checked = check_proof(proof, method=method, url=url, now=now, window=self.dpop_window,
                              algorithms=self.dpop_algorithms, access_token=token)
        if checked.jkt != jkt:
            raise InvalidDPoPBinding("the proof is signed by another key than the token's")
        if not self.dpop_replays.add(checked.jkt, checked.jti, checked.iat, now):
            raise InvalidDPoPProof("the proof was presented before")

    def _header(self, segment: str) -> tuple[str, str]:
        """(alg, kid) of an acceptable header; the answer is cached per header segment, since every
        token one key signs has the same header."""
        checked = self._headers.get(segment)
        if checked is None:
            header = json_object(b64url_decode(segment), "header", self.max_token_bytes)
            checked = check_header(header, self.algorithms, self.token_type)
            if len(self._headers) >= HEADER_CACHE_SIZE:
                del self._headers[next(iter(self._headers))]
            self._headers[segment] = checked
        return checked

    async def _unknown_kid(self, kid: str) -> PublicKey:
        fetched = await self.keys.refresh_for_unknown()
        key = self.keys.get(kid)
        if key is not None:
            return key
        if fetched is False:
            raise VerifierUnavailable("the issuer's keys cannot be fetched")
        raise UnknownKey(f"unknown kid {kid[:64]!r}")

    def _check_mirror(self, now: float) -> None:
        assert self.mirror is not None
        since = self.mirror.disconnected_since
        if since is not None and self.max_disconnected is not None and now - since > self.max_disconnected:
            raise VerifierUnavailable("the revocation mirror is disconnected")

    # ---- hooks ----

    def _kid_revoked(self, kid: str) -> bool:
        return self.mirror is not None and self.mirror.state.kid_revoked(kid, self._clock())

    def _drop_revoked_key(self, entry: FeedEntry) -> None:
        if entry.kind == "kid":
            self.keys.drop(entry.value)

    def _fetched(self, result: str) -> None:
        self.metrics.jwks_fetches.labels(result).inc()

    def metrics_state(self) -> VerifierState:
        """For the state gauges, when scraped."""
        if self.mirror is None:
            return VerifierState(len(self.keys.keys))
        return VerifierState(len(self.keys.keys), self.mirror.connected, self.mirror.lag_seconds,
                             len(self.mirror.state))


def verifier_metrics(registry: CollectorRegistry | None, audience: str) -> Metrics:
    """A verifier's metrics on `registry`; None: prometheus-client's global registry if it is
    installed, else none at all."""
    if registry is None:
        try:  # here, not at the top: prometheus-client is optional (the `metrics` extra)
            from prometheus_client import REGISTRY
        except ModuleNotFoundError:
            return Unmeasured()
        registry = REGISTRY
    from .metrics import VerifierMetrics
    return VerifierMetrics(registry, audience)


def _mirror(redis_url: str, metrics: Metrics, clock: Callable[[], float], grace: float) -> RevocationMirror:
    try:  # here, not at the top: only a verifier that follows revocations needs redis-py
        from .mirror import RevocationMirror
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"TokenVerifier(redis_url=...) needs redis-py ({exc}): "
                                  "pip install 'tokensrv-verify[redis]'") from exc
    return RevocationMirror(redis_url, metrics, clock, grace=grace)


def _result(exc: InvalidToken) -> str:
    if isinstance(exc, (InsufficientScope, InsufficientRole)):
        return "forbidden"
    if isinstance(exc, ExpiredToken):
        return "expired"
    if isinstance(exc, RevokedToken):
        return "revoked"
    return "unavailable" if isinstance(exc, VerifierUnavailable) else "invalid"
