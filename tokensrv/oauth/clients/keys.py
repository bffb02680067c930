"""The public keys of private_key_jwt clients (RFC 7523 §3, OIDC Core §9): a registered JWKS, or
one fetched from the client's `jwks_uri` and cached here.

What an attacker controls is the assertion, so nothing it names is fetched (no `jku`, `x5u`):
only the URI an operator registered. A fetched JWKS is cached for CACHE_TTL seconds; an assertion
whose `kid` the cache lacks causes a refetch, but at most one per REFETCH_INTERVAL for that URI,
so random kids cannot make us hammer the client's server (nor a failing one: a failed fetch
counts as an attempt). Concurrent verifications wait for one fetch. The transport (HTTPS only,
a size cap, a timeout, no redirects) is the `fetch` function, tokensrv/server/outbound/client_jwks.py.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from tokensrv.verify.json_limits import parse

CACHE_TTL = 300  # seconds a fetched JWKS is used before it is fetched again
REFETCH_INTERVAL = 10  # at least this long between two fetches of one URI (unknown kids, failures)
MAX_KEYS = 20
MAX_JWKS_BYTES = 64 * 1024  # a fetched JWKS (the fetch reads no more) or a --jwks-file
MAX_ENTRIES = 1_000  # URIs cached per process (there are as many as private_key_jwt clients)
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")

Fetch = Callable[[str], Awaitable[bytes]]


class KeysUnavailable(Exception):
    """The client's keys could not be had (a fetch failed, or the JWKS is unusable)."""


def check_jwks_uri(uri: str) -> str:
    """https, or http to a loopback address (development, tests); no user info, no fragment.
    Raises ValueError with a one-line reason."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        raise ValueError(f"malformed jwks_uri {uri!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or "#" in uri:
        raise ValueError(f"jwks_uri {uri!r} must be an absolute https URL without a fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"jwks_uri {uri!r} must not carry user info")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError(f"jwks_uri {uri!r} must use https (http only for loopback)")
    return uri


def public_key_set(document: Any) -> KeySet:
    """A JWKS of public signing keys (RSA, EC, OKP), else ValueError with a one-line reason."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS must be a JSON object with a "keys" list')  # not TypeError: one kind of bad input
    keys = document["keys"]
    if not keys or len(keys) > MAX_KEYS:
        raise ValueError(f"a JWKS must hold 1 to {MAX_KEYS} keys")
    imported: list[OctKey | RSAKey | ECKey | OKPKey] = []  # KeySet's type; no OctKey gets in
    for item in keys:
        if not isinstance(item, dict):
            raise ValueError("every JWKS entry must be a JSON object")  # not TypeError: one kind of bad input
        if any(name in item for name in PRIVATE_MEMBERS):
            raise ValueError("the JWKS holds private or symmetric key material: register public keys only")
        if item.get("use", "sig") != "sig":
            raise ValueError("the JWKS holds a key whose use is not 'sig'")
        try:
            imported.append(_import(item))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"the JWKS holds a key that cannot be read ({type(exc).__name__})") from None
    if len(imported) > 1 and any("kid" not in item for item in keys):
        raise ValueError("every key of a JWKS with several keys needs a kid")
    return KeySet(imported)


def _import(item: dict[str, Any]) -> RSAKey | ECKey | OKPKey:
    kinds: dict[str, type[RSAKey | ECKey | OKPKey]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
    kind = kinds.get(str(item.get("kty")))
    if kind is None:
        raise ValueError(f"key type {item.get('kty')!r}")
    return kind.import_key(item)


@dataclass
class _Entry:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")  # last success
    attempted_at: float = float("-inf")  # last fetch, successful or not


class ClientKeys:
    """jwks_uri -> its KeySet, cached in this process."""

    def __init__(self, fetch: Fetch, clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # for tests and logs: how many fetches were made

    async def keys(self, uri: str, kid: str | None) -> KeySet:
        """The keys at `uri`, fetched again if they are stale or lack `kid` (within the limits)."""
        entry = self._entries.get(uri)
        if entry is not None and entry.keys is not None and self._usable(entry, kid):
            return entry.keys
        async with self._locks.setdefault(uri, asyncio.Lock()):
            entry = self._entries.setdefault(uri, _Entry())
            if entry.keys is not None and self._usable(entry, kid):
                return entry.keys  # another verification fetched while this one waited
            if self._clock() - entry.attempted_at >= REFETCH_INTERVAL:
                await self._refresh(uri, entry)
            if entry.keys is None:
                raise KeysUnavailable(f"no keys from {uri} (fetch failed or too soon to retry)")
            return entry.keys

    def _usable(self, entry: _Entry, kid: str | None) -> bool:
        fresh = self._clock() - entry.fetched_at < CACHE_TTL
        return fresh and (kid is None or any(k.kid == kid for k in entry.keys or ()))

    async def _refresh(self, uri: str, entry: _Entry) -> None:
        entry.attempted_at = self._clock()
        self.fetches += 1
        try:
            check_jwks_uri(uri)
            entry.keys = public_key_set(parse(await self._fetch(uri), max_bytes=MAX_JWKS_BYTES))
            entry.fetched_at = self._clock()
        except Exception as exc:  # any failure: keep what we had (stale keys still verify)
            if entry.keys is None:
                raise KeysUnavailable(f"fetching {uri} failed: {type(exc).__name__}: {exc}"[:300]) from None
        if len(self._entries) > MAX_ENTRIES:
            oldest = next(iter(self._entries))
            del self._entries[oldest]
            self._locks.pop(oldest, None)


async def no_fetch(uri: str) -> bytes:
    """Where no HTTP client exists (the admin CLI): jwks_uri clients cannot be checked."""
    raise KeysUnavailable("no HTTP client to fetch a jwks_uri here")
