"""Rate limits on the token endpoint: a token bucket per client and one per client address.

Both are off by default (TOKENSRV_TOKEN_RATE_PER_CLIENT / _PER_ADDRESS = 0): a bucket costs a
Valkey round trip per request. The address bucket is taken before the client authenticates, so a
flood of wrong secrets is limited too; the client bucket after, so a client cannot spend another's.
Refusals are 429 `slow_down` with Retry-After (RFC 6585 §4).
"""
from __future__ import annotations

import math

from tokensrv.errors import SlowDown
from tokensrv.oauth import Provider


async def _take(p: Provider, key: str, rate: float) -> None:
    if rate <= 0:
        return
    wait = await p.store.limits.take_token(key, rate, p.settings.token_rate_burst, p.now_ms())
    if wait > 0:
        raise SlowDown(math.ceil(wait), f"token rate limit {key.split(':')[0]}")


async def limit_address(p: Provider, remote: str) -> None:
    await _take(p, "addr:" + remote, p.settings.token_rate_per_address)


async def limit_client(p: Provider, client_id: str) -> None:
    await _take(p, "client:" + client_id, p.settings.token_rate_per_client)
