"""Readers of flag values the client commands share: a duration (--ttl, --overlap) and a JWKS
file (--jwks-file), each refused in one line naming the flag or the file."""
from __future__ import annotations

from typing import Any

from tokensrv.cli.console import CLIError
from tokensrv.verify.json_limits import JSONRejected, parse

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(raw: str, flag: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `1h` or `7d`."""
    text = raw.strip().lower()
    unit = _UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise CLIError(f"{flag} must be a whole number of seconds or end in s, m, h or d, got {raw!r}")
    return int(number) * (unit or 1)


MAX_JWKS_FILE = 64 * 1024


def read_jwks(path: str) -> Any:
    """The JSON of a --jwks-file (admin.add_client checks that it holds public keys only)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JWKS_FILE + 1)
    except OSError as exc:
        raise CLIError(f"cannot read the JWKS file {path!r}: {exc.strerror}") from None
    if len(raw) > MAX_JWKS_FILE:
        raise CLIError(f"the JWKS file {path!r} is over {MAX_JWKS_FILE} bytes")
    try:
        return parse(raw, max_bytes=MAX_JWKS_FILE)
    except JSONRejected as exc:
        raise CLIError(f"the JWKS file {path!r} is not JSON we accept: {exc}") from None
