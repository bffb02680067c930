"""The client's address behind reverse proxies: X-Forwarded-For is believed only from a trusted peer.

Walking the header from the right, every hop added by a trusted proxy is skipped; the first address
that is not a trusted proxy is the client. Anything a client wrote further left is its own claim and
is ignored, so a client cannot choose its rate-limit bucket by sending the header itself.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from tokensrv.config import IPNetwork


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
