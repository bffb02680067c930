"""Fetching a private_key_jwt client's `jwks_uri` over HTTP (oauth/clients/keys.py caches it).

Only the registered URI is fetched, with a total timeout, no redirects (a 3xx is a failure: a
redirect could lead to another scheme or host), and a size cap read before the body is parsed.
"""
from __future__ import annotations

import aiohttp

from tokensrv.oauth.clients.keys import MAX_JWKS_BYTES, Fetch
from tokensrv.verify.jwks import read_at_most

TIMEOUT = 5.0  # seconds for the whole fetch
MAX_BYTES = MAX_JWKS_BYTES  # read no more than the parser would take


class FetchFailed(Exception):
    pass


def fetcher(session: aiohttp.ClientSession) -> Fetch:
    async def fetch(uri: str) -> bytes:
        async with session.get(uri, allow_redirects=False, headers={"Accept": "application/json"},
                               timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
            if resp.status != 200:
                raise FetchFailed(f"HTTP {resp.status}")
            if (resp.content_length or 0) > MAX_BYTES:
                raise FetchFailed(f"the JWKS is over {MAX_BYTES} bytes")
            body = await read_at_most(resp.content, MAX_BYTES)
            if len(body) > MAX_BYTES:
                raise FetchFailed(f"the JWKS is over {MAX_BYTES} bytes")
            return body
    return fetch
