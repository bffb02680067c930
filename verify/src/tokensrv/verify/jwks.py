"""The issuer's keys: discovery, the JWKS fetched over HTTP, and a cache that honours Cache-Control.

The cache is refreshed in the background before `max-age` runs out (conditionally, with the
ETag). A `kid` it does not know triggers one refetch, at most every `refetch_interval` seconds,
and concurrent verifications share that one fetch. We never fetch anything a token names.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from .json_limits import JSONRejected, parse_object
from .jws import PublicKey, import_jwks
from .tracing import SPAN_NAME, client_trace_config, tracer_for

log = logging.getLogger("tokensrv.verify")

DEFAULT_MAX_AGE = 300.0  # when the JWKS response says nothing about caching
MAX_MAX_AGE = 86400.0
MIN_REFRESH = 1.0  # even `max-age=0` does not make us fetch in a loop
MAX_DOCUMENT_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class FetchError(Exception):
    """The issuer's discovery document or JWKS could not be fetched or read."""


@dataclass(frozen=True)
class JWKSResponse:
    document: Mapping[str, Any] | None  # None: not modified since the ETag we sent
    etag: str | None = None
    max_age: float | None = None  # seconds, from Cache-Control


# The seam unit tests use: given the ETag we hold (or None), fetch the JWKS.
JWKSFetcher = Callable[[str | None], Awaitable[JWKSResponse]]


def max_age_of(cache_control: str | None) -> float | None:
    """Seconds the response may be cached; 0 for no-store/no-cache; None when it does not say."""
    if not cache_control:
        return None
    if re.search(r"\bno-(store|cache)\b", cache_control, re.IGNORECASE):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


class HttpJWKSFetcher:
    """The default fetcher: discovery (OIDC Discovery §4) once, then the JWKS with If-None-Match.
    `on_request` hears of every HTTP request made to the issuer (the verifier counts them).
    `tracer_provider`: trace the fetches with it; None: with the global one if an SDK is set up
    by the first fetch (tokensrv.verify.tracing), else not at all."""

    def __init__(self, issuer: str, jwks_uri: str | None = None, timeout: float = 5.0,
                 on_request: Callable[[str], None] | None = None, tracer_provider: Any = None) -> None:
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.on_request = on_request or (lambda kind: None)
        self.tracer_provider = tracer_provider
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, etag: str | None) -> JWKSResponse:
        if self.jwks_uri is None:
            self.jwks_uri = await self._discover()
        headers = {"Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        async with self._get(self.jwks_uri, "jwks", headers) as resp:
            max_age = max_age_of(resp.headers.get("Cache-Control"))
            if resp.status == 304:
                return JWKSResponse(None, resp.headers.get("ETag", etag), max_age)
            document = await self._json(resp)
            return JWKSResponse(document, resp.headers.get("ETag"), max_age)

    async def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        async with self._get(url, "discovery", {"Accept": "application/json"}) as resp:
            metadata = await self._json(resp)
        # OIDC Discovery §4.3: the document must name the issuer we were configured with
        if metadata.get("issuer") != self.issuer:
            raise FetchError(f"discovery names issuer {str(metadata.get('issuer'))[:100]!r}")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise FetchError("discovery has no usable jwks_uri")
        return jwks_uri

    def _get(self, url: str, kind: str, headers: dict[str, str]) -> Any:
        if self._session is None or self._session.closed:
            tracer = tracer_for(self.tracer_provider)  # decided once per session: nothing when off
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, trace_configs=None if tracer is None else [client_trace_config(tracer)])
        self.on_request(kind)
        return self._session.get(url, headers=headers, allow_redirects=False,
                                 trace_request_ctx={SPAN_NAME: f"GET {kind}"})

    @staticmethod
    async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
        if resp.status != 200:
            raise FetchError(f"{resp.url} answered {resp.status}")
        body = await read_at_most(resp.content, MAX_DOCUMENT_BYTES)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise FetchError(f"{resp.url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return parse_object(body, max_bytes=MAX_DOCUMENT_BYTES)
        except JSONRejected as exc:
            raise FetchError(f"{resp.url} answered no JSON we accept: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or its first limit + 1 bytes when it is longer. (StreamReader.read(n)
    returns what has arrived so far, which for a body in several TCP segments is only a part.)"""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class KeyCache:
    """The issuer's public keys by kid: what verifications read, without awaiting anything."""

    def __init__(self, fetch: JWKSFetcher, allowed: frozenset[str], clock: Callable[[], float],
                 refetch_interval: float = 5.0, excluded: Callable[[str], bool] = lambda kid: False,
                 on_fetch: Callable[[str], None] = lambda result: None) -> None:
        self.keys: dict[str, PublicKey] = {}
        self.loaded = False
        self.max_age = DEFAULT_MAX_AGE
        self._fetch = fetch
        self._allowed = allowed
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._excluded = excluded  # revoked kids: never (re)admitted
        self._on_fetch = on_fetch
        self._etag: str | None = None
        self._inflight: asyncio.Future[bool] | None = None
        self._last_unknown_refetch = float("-inf")

    def get(self, kid: str) -> PublicKey | None:
        return self.keys.get(kid)

    def drop(self, kid: str) -> None:
        self.keys.pop(kid, None)

    async def refresh(self) -> bool:
        """Fetch now, or join the fetch already in flight. True if the cache is now current."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._fetch_and_apply())
        # shielded: a cancelled verification must not cancel the fetch others are waiting for
        return await asyncio.shield(self._inflight)

    async def refresh_for_unknown(self) -> bool | None:
        """One refetch for a kid we do not know, unless one ran in the last `refetch_interval`
        seconds: forged kids must not turn into a request flood. None when rate-limited, else
        whether the fetch succeeded."""
        running = self._inflight is not None and not self._inflight.done()
        if not running:
            now = self._clock()
            if now - self._last_unknown_refetch < self._refetch_interval:
                return None
            self._last_unknown_refetch = now
        return await self.refresh()

    async def _fetch_and_apply(self) -> bool:
        try:
            response = await self._fetch(self._etag if self.loaded else None)
        except (FetchError, aiohttp.ClientError, OSError, TimeoutError) as exc:  # keep the keys we have
            log.warning("JWKS fetch failed: %s: %s", type(exc).__name__, exc)
            self._on_fetch("error")
            return False
        if response.max_age is not None:
            self.max_age = min(response.max_age, MAX_MAX_AGE)
        if response.document is None:
            self._on_fetch("not_modified")
            return True
        keys = import_jwks(response.document, self._allowed)
        self.keys = {kid: key for kid, key in keys.items() if not self._excluded(kid)}
        self._etag, self.loaded = response.etag, True
        self._on_fetch("ok")
        return True

    def next_refresh_in(self, last_ok: bool, failures: int) -> float:
        """Seconds until the next background refresh: before max-age runs out, or a backoff."""
        if not last_ok:
            return min(2.0 ** failures, 60.0, max(self.max_age, MIN_REFRESH))
        return max(self.max_age * 0.8, MIN_REFRESH)

    async def close(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)

    async def run(self) -> None:
        """Keep the cache fresh for as long as the verifier runs."""
        failures = 0 if self.loaded else 1
        while True:
            await asyncio.sleep(self.next_refresh_in(failures == 0, failures))
            failures = 0 if await self.refresh() else failures + 1
