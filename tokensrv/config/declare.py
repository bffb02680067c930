"""How a setting is declared: each reader parses a TOKENSRV_<NAME> value (or a CLI flag's) with its
bounds, and carries the line the configuration reference shows (tokensrv/config/__init__.py declares
the settings with these)."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tokensrv.claims import NO_RULES, ClaimRules, ClaimsError, is_scope_token, load_rules

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


class ConfigError(Exception):
    """A bad setting: the message names it and is safe to print as one line."""


# (variable name, its text or a CLI flag's value) -> the setting's value, or ConfigError
Reader = Callable[[str, object], Any]


@dataclass(frozen=True)
class Setting:
    """What a declaration carries besides its default: how a chosen value is read and checked,
    and the configuration reference's default and meaning columns."""
    read: Reader
    doc: str
    default_doc: str


def env_name(name: str) -> str:
    return "TOKENSRV_" + name.upper()


def declare(default: T, read: Reader, doc: str, default_doc: str | None) -> T:
    shown = default_doc if default_doc is not None else f"`{_shown(default)}`"
    return field(default=default, metadata={"setting": Setting(read, doc, shown)})


def _shown(default: object) -> str:
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default).lower() if isinstance(default, bool) else str(default)


def whole(default: int, doc: str, *, minimum: int = 1, maximum: int | None = None, unit: str = "",
          default_doc: str | None = None) -> int:
    """A whole number, at least `minimum` (0 or 1) and at most `maximum` (`unit` names it)."""
    def read(env: str, raw: object) -> int:
        try:
            value = raw if isinstance(raw, int) else int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{env} must be a whole number, got {raw!r}") from None
        if value < minimum:
            kind = "a positive" if minimum else "a non-negative"
            raise ConfigError(f"{env} must be {kind} whole number, got {raw!r}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{env} must be at most {maximum}{unit}, got {value}")
        return value
    return declare(default, read, doc, default_doc)


def number(default: float, doc: str, *, zero_allowed: bool = False, default_doc: str | None = None) -> float:
    """A finite number, above 0 (or at least 0 where 0 means off)."""
    def read(env: str, raw: object) -> float:
        try:
            value = raw if isinstance(raw, float) else float(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{env} must be a number, got {raw!r}") from None
        if not (value >= 0 if zero_allowed else value > 0) or value == float("inf"):
            kind = "a non-negative" if zero_allowed else "a positive"
            raise ConfigError(f"{env} must be {kind} number, got {raw!r}")
        return value
    return declare(default, read, doc, default_doc)


def flag(default: bool, doc: str) -> bool:
    def read(env: str, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        value = str(raw).strip().lower()
        if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{env} must be true or false, got {raw!r}")
        return value in ("1", "true", "yes", "on")
    return declare(default, read, doc, None)


def text(default: str, doc: str, *, default_doc: str | None = None,
         check: Callable[[str, str], None] | None = None) -> str:
    def read(env: str, raw: object) -> str:
        value = str(raw)
        if check is not None:
            check(env, value)
        return value
    return declare(default, read, doc, default_doc)


def choice(default: str, choices: tuple[str, ...], doc: str, *, fold_case: bool = False) -> str:
    """One of `choices` (in any case with fold_case, then kept in lower case)."""
    def read(env: str, raw: object) -> str:
        value = str(raw).lower() if fold_case else str(raw)
        if value not in choices:
            raise ConfigError(f"{env} must be {_one_of(choices)}, got {value!r}")
        return value
    return declare(default, read, doc, None)


def _one_of(choices: tuple[str, ...]) -> str:
    return f"{choices[0]!r} or {choices[1]!r}" if len(choices) == 2 else f"one of {', '.join(choices)}"

def networks(doc: str) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR networks, separated by commas."""
    def read(env: str, raw: object) -> tuple[IPNetwork, ...]:
        if isinstance(raw, tuple):  # an override that is networks already
            return raw
        found = []
        for item in filter(None, (part.strip() for part in str(raw).split(","))):
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"{env}: {item!r} is not an IP address or network") from None
        return tuple(found)
    return declare((), read, doc, "none")


def scope_tokens(env: str, value: str) -> None:
    if bad := [scope for scope in value.split() if not is_scope_token(scope)]:
        raise ConfigError(f"{env}: malformed scope {bad[0]!r}")


def claims_file(doc: str) -> ClaimRules:
    def read(env: str, raw: object) -> ClaimRules:
        try:
            return raw if isinstance(raw, ClaimRules) else load_rules(Path(str(raw)))
        except ClaimsError as exc:
            raise ConfigError(f"{env}: {exc}") from None
    return declare(NO_RULES, read, doc, "none")
