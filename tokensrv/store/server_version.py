"""The oldest Valkey/Redis tokensrv runs on, checked when a process opens the store (serve, and every
CLI command that uses the store), so that an old one is refused at start with one line instead of
failing the first revocation: a revocation waits for the primary's AOF with WAITAOF (store/redis.py),
a command Valkey and Redis have since 7.2.

The version is read from INFO server: `valkey_version` on Valkey (which keeps `redis_version` at
7.2.4 from 8.0 on, for clients that test it), else `redis_version`. A Cluster answers per node,
and every node must be new enough.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tokensrv.verify.store_url import StoreClient

MINIMUM = (7, 2)
_VERSION = re.compile(r"(\d+)\.(\d+)")


def server_version(info: Mapping[str, Any]) -> tuple[str, tuple[int, int]] | None:
    """("Valkey" or "Redis", (major, minor)) from one server's INFO server, or None when it says
    neither (a server that is neither, or a proxy that hides it)."""
    for field, name in (("valkey_version", "Valkey"), ("redis_version", "Redis")):
        found = _VERSION.match(str(info.get(field, "")))
        if found:
            return name, (int(found[1]), int(found[2]))
    return None


def version_problem(info: Mapping[str, Any]) -> str | None:
    """Why this INFO server's server cannot be tokensrv's store, or None if it can: what it runs and
    what tokensrv needs, in one line. A server that names no version is let through (unknowable)."""
    found = server_version(info)
    if found is None or found[1] >= MINIMUM:
        return None
    name, (major, minor) = found
    return (f"the store runs {name} {major}.{minor}; tokensrv needs Valkey or Redis "
            f"{MINIMUM[0]}.{MINIMUM[1]} or newer (for WAITAOF)")


def per_server(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """INFO's answer as one mapping per server: a Cluster client answers {node: info, ...}."""
    if all(isinstance(value, Mapping) for value in info.values()) and info:
        return list(info.values())
    return [info]


async def store_version_problem(redis: StoreClient) -> str | None:
    """The store's version_problem (the first node's, on a Cluster), or None."""
    answer = await redis.info("server")
    return next(filter(None, map(version_problem, per_server(answer))), None)
