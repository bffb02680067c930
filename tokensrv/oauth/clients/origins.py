"""Web origins: how a browser names the page that sends a request (`Origin`, RFC 6454), and a
client's allowed web origins, from where a browser application of that client may call the token,
revocation and UserInfo endpoints (CORS: tokensrv/server/cors.py). No registered RFC 7591 field
exists for them (Keycloak calls them "web origins"); ours is `allowed_origins`.

An allowed origin is exact (RFC 6454 §6.2 serialised, as a browser sends it): scheme, host and port
only. No path, no wildcard and never "null" (sandboxed frames, file: pages and redirects all send
it: anybody can). https, or http for loopback only, as for redirect URIs (RFC 8252 §7.3).
"""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_ORIGIN = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def origin_of(uri: str) -> str | None:
    """The RFC 6454 origin of an http(s) URI, serialised as browsers send it in `Origin`."""
    parts = urlsplit(uri)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = "" if parts.port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def check_origin(origin: str) -> str:
    """The origin normalised (scheme and host lower-case, the default port dropped); ValueError
    with a one-line reason when it is not one exact http(s) origin."""
    if len(origin) > MAX_ORIGIN or not origin.isprintable() or any(c.isspace() for c in origin):
        raise ValueError(f"must be printable, without spaces, at most {MAX_ORIGIN} characters")
    if "*" in origin:
        raise ValueError("has a wildcard: register each origin exactly")
    try:
        parts = urlsplit(origin.lower())
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        raise ValueError("is malformed: an origin is scheme://host[:port]") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("must be scheme://host[:port] with scheme https (or http for loopback)")
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        raise ValueError("must have no path, query or fragment: an origin is scheme://host[:port]")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError("must use https (http only for loopback)")
    return origin_of(origin.lower()) or origin
