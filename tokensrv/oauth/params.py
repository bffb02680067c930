"""Request parameters (RFC 6749 §3.1, §3.2): each at most once, none empty, bounded in size."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from tokensrv.errors import InvalidRequest

MAX_VALUE = 4096
MAX_PARAMETERS = 1000  # more is no request of ours; counted here (server/app.py turns aiohttp's limit off)
# Tokens and codes are judged by their endpoint, whose answer to one that is too long is the
# answer to any token it does not know: inactive (RFC 7662 §2.2), 200 (RFC 7009 §2.2),
# invalid_grant (RFC 6749 §5.2), invalid_token (RFC 6750 §3.1), not a malformed request. The body
# limit still bounds them, and their readers refuse them cheaply (a length check; a code: one hash).
TOKEN_PARAMETERS = frozenset({"token", "refresh_token", "code", "access_token", "device_code",
                              "subject_token", "actor_token"})
_LOGGABLE = 32  # secrets (43 chars), refresh tokens (64) and JWTs are longer than this


def for_log(value: str) -> str:
    """A client-supplied value for the log: short ones quoted, longer ones (which may be a secret or
    a token sent in the wrong place) only by their length."""
    return repr(value) if len(value) <= _LOGGABLE else f"<{len(value)} characters>"


def single_valued(items: Iterable[tuple[str, object]]) -> dict[str, str]:
    """A plain dict of the parameters; a repeated parameter, a file upload, an over-long value
    (other than a token's) or more than MAX_PARAMETERS parameters is invalid_request.

    Parameters sent without a value are treated as omitted (RFC 6749 §3.1).
    """
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in items:
        if name in seen:
            raise InvalidRequest(f"parameter {for_log(name)} repeated",
                                 description=f"parameter {name[:40]!r} is repeated")
        seen.add(name)
        if len(seen) > MAX_PARAMETERS:
            raise InvalidRequest("too many parameters", description="the request has too many parameters")
        if not isinstance(value, str):
            raise InvalidRequest("non-text parameter", description="parameters must be text")
        if len(value) > MAX_VALUE and name not in TOKEN_PARAMETERS:
            raise InvalidRequest(f"parameter {for_log(name)} too long",
                                 description=f"parameter {name[:40]!r} is too long")
        if value != "":
            params[name] = value
    return params


def require(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise InvalidRequest(f"missing {name}", description=f"parameter {name!r} is required")
    return value
