"""Checking a username and password, shared by the password grant and the login page.

Rate limited per username and per client address (failures within LOGIN_FAILURE_WINDOW); the
argon2 work runs in the password pool; a hash with outdated parameters is upgraded on success.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import SlowDown
from ..store import User
from . import Provider


def _limit_keys(username: str, remote: str) -> list[str]:
    return [f"login:user:{username.casefold()}", f"login:addr:{remote}"]


async def check_credentials(p: Provider, username: str, password: str, remote: str) -> User | None:
    """The user, if the password is right and the account enabled; None otherwise."""
    keys = _limit_keys(username, remote)
    limit = p.settings.login_max_failures
    blocked = [ttl for count, ttl in await p.store.failures(keys) if count >= limit]
    if blocked:
        raise SlowDown(max(blocked), "too many failed logins")
    user = await p.store.find_user(username)
    checked = await p.passwords.check(user.password_hash if user else None, password)
    if user is None or not checked.ok or user.disabled:
        await p.store.add_failure(keys, p.settings.login_failure_window)
        return None
    await p.store.clear_failures(keys[:1])  # the address keeps its count: no reset by own logins
    if checked.new_hash:
        user = replace(user, password_hash=checked.new_hash)
        await p.store.save_user(user)
    return user
