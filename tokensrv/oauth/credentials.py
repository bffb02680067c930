"""Checking a username and password, shared by the password grant and the login page.

Rate limited per username and per client address (failures within LOGIN_FAILURE_WINDOW); the
argon2 work runs in the password pool; a hash with outdated parameters is upgraded on success.
A check the pool cannot take (its queue is full) or finish (a worker died) is a 503
temporarily_unavailable, never a success; the attempt is not counted, as no password was judged.
"""
from __future__ import annotations

from tokensrv.errors import SlowDown, TemporarilyUnavailable
from tokensrv.oauth import Provider
from tokensrv.observability import events
from tokensrv.passwords import Unavailable
from tokensrv.store import User


def limit_keys(kind: str, who: str, remote: str) -> list[str]:
    """A guess limit's keys: per user (username or sub) and per client address."""
    return [f"{kind}:user:{who}", f"{kind}:addr:{remote}"]


async def count_attempt(p: Provider, keys: list[str]) -> int | None:
    """Count an attempt on each key before it is judged, so that a burst of concurrent attempts
    cannot all slip under the limit; past TOKENSRV_LOGIN_MAX_FAILURES, the seconds to wait."""
    counted = await p.store.limits.count_attempt(keys, p.settings.login_failure_window)
    blocked = [ttl for count, ttl in counted if count > p.settings.login_max_failures]
    return max(blocked) if blocked else None


async def attempt_passed(p: Provider, keys: list[str]) -> None:
    """A right answer: the user's failures are cleared; the address keeps its own (no reset by
    one's own logins), only this attempt is taken back."""
    await p.store.limits.clear_failures(keys[:1])
    await p.store.limits.forgive_attempt(keys[1:])


async def check_credentials(p: Provider, username: str, password: str, remote: str) -> User | None:
    """The user, if the password is right and the account enabled; None otherwise."""
    if p.passwords.full:  # fail fast, before any store round trip
        raise TemporarilyUnavailable("argon2 queue full")
    keys = limit_keys("login", username.casefold(), remote)
    wait = await count_attempt(p, keys)  # a successful attempt is taken back afterwards
    if wait is not None:
        events.login_throttled(remote)
        raise SlowDown(wait, "too many failed logins")
    user = await p.store.users.find_user(username)
    try:
        checked = await p.passwords.check(user.password_hash if user else None, password)
    except Unavailable as exc:
        await p.store.limits.forgive_attempt(keys)
        raise TemporarilyUnavailable(str(exc)) from None
    if user is not None and checked.ok:
        # read again after the argon2 check: a password change or a disable made while it ran
        # must not let the old password in, nor a disabled account
        current = await p.store.users.get_user(user.sub)
        user = current if current is not None and current.password_hash == user.password_hash else None
    if user is None or not checked.ok or user.disabled:
        events.login_failed(remote)
        return None  # the counted attempt stays: a failure
    events.logged_in(user.sub, remote)
    await attempt_passed(p, keys)
    if checked.new_hash:
        await p.store.users.rehash_password(user, checked.new_hash)  # only if nobody changed the user meanwhile
    return user
