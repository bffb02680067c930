"""Reading a request, once for the API and the pages: the provider, the client's address, the
urlencoded form and the Authorization header.

The client's address behind reverse proxies: X-Forwarded-For is believed only from a trusted peer.
Walking the header from the right, every hop added by a trusted proxy is skipped; the first address
that is not a trusted proxy is the client. Anything a client wrote further left is its own claim and
is ignored, so a client cannot choose its rate-limit bucket by sending the header itself.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from yarl import query_to_pairs

from tokensrv.config import IPNetwork
from tokensrv.errors import InvalidRequest
from tokensrv.oauth import Provider
from tokensrv.oauth.params import single_valued
from tokensrv.server.appkeys import PROVIDER, SETTINGS

FORM = "application/x-www-form-urlencoded"
# the client's address, worked out once per request: the handler and the access line both ask
_REMOTE = web.RequestKey("remote_address", str)


def provider(request: web.Request) -> Provider:
    return request.app[PROVIDER]


def remote_address(request: web.Request) -> str:
    """The client's address, through trusted proxies only (TOKENSRV_TRUSTED_PROXIES): the key of the
    rate limits and lockouts, and the access log's `remote`."""
    found = request.get(_REMOTE)
    if found is None:
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        found = request[_REMOTE] = client_address(request.remote, forwarded, request.app[SETTINGS].trusted_proxies)
    return found


async def form_pairs(request: web.Request, what: str = "the request body") -> list[tuple[str, object]]:
    """The urlencoded body as sent, repeats included (the caller decides what a repeat means)."""
    if request.content_type != FORM:
        raise InvalidRequest("wrong content type", description=f"{what} must be {FORM}")
    if request.method not in request.POST_METHODS:  # as request.post() answers them: no parameters
        return []
    try:
        return _pairs(await request.read(), request.charset or "utf-8")
    except (UnicodeDecodeError, LookupError):  # bytes not in the charset, or an unknown charset
        raise InvalidRequest("undecodable body", description=f"{what} is not valid UTF-8") from None


def _pairs(body: bytes, charset: str) -> list[tuple[str, object]]:
    """What aiohttp's request.post() makes of an urlencoded body (the same yarl parser, without a
    parameter limit: oauth/params.py counts them), without the MultiDict it would build around it
    for us to take apart again (that took as long as the parsing itself)."""
    if not body:
        return []
    return list(query_to_pairs(body.rstrip().decode(charset), encoding=charset))


async def form_params(request: web.Request) -> dict[str, str]:
    """The urlencoded body as single-valued parameters (RFC 6749 §3.2, §2.3.1)."""
    return single_valued(await form_pairs(request))


def authorization(request: web.Request) -> str | None:
    """The Authorization header; two of them are as ambiguous as a repeated parameter."""
    values = request.headers.getall("Authorization", [])
    if len(values) > 1:
        raise InvalidRequest("Authorization repeated", description="the Authorization header is repeated")
    return values[0] if values else None


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[IPNetwork]) -> str:
    peer = peer or "unknown"
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy chain: fall back to what we know
    return hops[0] if hops else peer
