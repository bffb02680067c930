"""Revocation -> verifier mirror: from sending POST /oauth2/revoke to the moment a downstream
TokenVerifier (following the revocation feed) has applied the entry."""
from __future__ import annotations

import asyncio
import base64
import functools
import operator
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Propagation:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def available() -> bool:
    """Whether tokensrv.verify (with its revocation mirror) has landed in this checkout."""
    try:
        from tokensrv.verify import TokenVerifier  # noqa: F401
    except ImportError:
        return False
    return True


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(url: str, redis_url: str, client_id: str, secret: str, samples: int) -> Propagation:
    from prometheus_client import CollectorRegistry

    from tokensrv.verify import RevokedToken, TokenVerifier

    auth = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
    applied: dict[str, float] = {}
    delays: list[float] = []
    async with aiohttp.ClientSession(url, headers=auth) as http, TokenVerifier(
            url, client_id, redis_url=redis_url, registry=CollectorRegistry()) as verifier:
        assert verifier.mirror is not None

        def seen(entry: Any) -> None:  # a FeedEntry, as the mirror applies it
            applied.setdefault(entry.value, time.perf_counter())

        verifier.mirror.on_revocation(seen)
        for _ in range(samples):
            token = await _token(http)
            claims: dict[str, Any] = await verifier.verify(token)
            jti = str(claims["jti"])
            started = time.perf_counter()
            async with http.post("/oauth2/revoke", data={"token": token}) as resp:
                assert resp.status == 200, await resp.text()
            await verifier.mirror.wait_for(functools.partial(operator.contains, applied, jti), timeout=10)
            delays.append((applied[jti] - started) * 1000)
            try:
                await verifier.verify(token)
                raise AssertionError("a revoked token still verifies")
            except RevokedToken:
                pass
    return Propagation(len(delays), statistics.median(delays), percentile(delays, 0.99), max(delays))


async def _token(http: aiohttp.ClientSession) -> str:
    async with http.post("/oauth2/token", data={"grant_type": "client_credentials"}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return str(body["access_token"])


def run(url: str, redis_url: str, client_id: str, secret: str, samples: int) -> Propagation:
    return asyncio.run(measure(url, redis_url, client_id, secret, samples))
