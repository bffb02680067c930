"""Client authentication with a lockout: secrets cannot be guessed at speed.

Failed authentications (a wrong secret, a refused private_key_jwt assertion) are counted per
client_id and client address (the address as tokensrv/server/request.py finds it), on every endpoint
that authenticates clients (token, revoke, introspect, PAR), in Valkey with the login counters'
mechanism (store.limits.count_attempt: one atomic MULTI/EXEC per failure). After
TOKENSRV_CLIENT_AUTH_MAX_FAILURES failures in a window of TOKENSRV_CLIENT_AUTH_FAILURE_WINDOW
seconds the pair is refused with 429 `slow_down` and Retry-After until the window ends, before its
secret is compared, so a throttled guesser learns nothing even when it guesses right. Other
addresses are not affected: an attacker cannot lock a service out.

Only failures cost a round trip: checking the counter on every request would add one to every
token request, which the client cache (store/cache.py) exists to avoid. So the lockout is also
kept in this process's memory from the moment it sees the limit reached, and a locked pair is
refused there. A lockout reached through other instances (or before a restart) is learnt here at
this pair's next failure; until then a right secret from that pair still succeeds here. That is
the price of free successes, and small: each instance still allows only the limit per window.

Windows are fixed and aligned to the clock (the counter's key names its window), which keeps the
store untouched and lets the injected clock drive them; a guesser gets at most twice the limit
across a window boundary, then waits for the next one.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tokensrv.errors import InvalidClient, SlowDown
from tokensrv.oauth.clients import assertion as client_assertion
from tokensrv.oauth.clients import metadata as clients
from tokensrv.oauth.endpoints.discovery import PATHS
from tokensrv.oauth.params import for_log
from tokensrv.observability import events
from tokensrv.store import Client

if TYPE_CHECKING:
    from tokensrv.oauth import Provider

MAX_LOCKED = 10_000  # pairs remembered per process; past it the oldest lockout is learnt again


class Lockouts:
    """(client_id, address) pairs this process knows are locked, with when their lockout ends."""

    def __init__(self, max_entries: int = MAX_LOCKED) -> None:
        self._until: dict[tuple[str, str], int] = {}
        self._max_entries = max_entries

    def remaining(self, pair: tuple[str, str], now: int) -> int:
        """Seconds the pair stays locked; 0 if it is not."""
        until = self._until.get(pair)
        if until is None:
            return 0
        if until <= now:
            del self._until[pair]
            return 0
        return until - now

    def lock(self, pair: tuple[str, str], until: int, now: int) -> None:
        if pair not in self._until and len(self._until) >= self._max_entries:
            for expired in [p for p, end in self._until.items() if end <= now]:
                del self._until[expired]
            if len(self._until) >= self._max_entries:
                # the oldest lockout ends first; that pair's next failure here locks it again
                del self._until[next(iter(self._until))]
        self._until[pair] = until


async def authenticate(p: Provider, form: Mapping[str, str], authorization: str | None, remote: str,
                       *, allow_public: bool = True, endpoint: str = "token_endpoint") -> Client:
    """The calling client, by the one method it is registered with (a secret, a private_key_jwt
    assertion sent to `endpoint`, or none), refused while the (client_id, address) pair is
    locked out. Failures of every method count toward the lockout."""
    offered = clients.presented(form, authorization)
    client_id = offered.client_id
    if offered.assertion is not None:
        client_id = client_assertion.claimed_client_id(offered.assertion)
        if offered.client_id not in (None, client_id):
            raise InvalidClient("client_id differs from the assertion's sub")
    if not client_id:
        raise InvalidClient("no client credentials")
    # an id no client can have is neither looked up nor counted: its key would be the attacker's
    pair = (client_id, remote) if clients.is_client_id(client_id) else None
    if pair is not None:
        locked_for = p.client_lockouts.remaining(pair, p.now())
        if locked_for:
            raise SlowDown(locked_for, "client authentication locked out")
    try:
        if offered.assertion is None:
            client = await clients.check(p.store.clients, client_id, offered.secret, allow_public=allow_public,
                                          now=p.now)
        else:
            client = await _by_assertion(p, client_id, offered.assertion, endpoint)
    except InvalidClient:
        if pair is not None:
            await _count_failure(p, pair)
        raise
    p.annotate("oauth.client_id", client.client_id)  # authenticated: an id, never what proved it
    return client


async def _by_assertion(p: Provider, client_id: str, assertion: str, endpoint: str) -> Client:
    if not clients.is_client_id(client_id):
        raise InvalidClient(f"client assertion sub {for_log(client_id)} is no client id")
    client = await p.store.clients.get_client(client_id)
    if client is None:
        raise InvalidClient(f"unknown client {client_id!r}")
    # RFC 7523 §3 and RFC 9126 §2: the issuer, the token endpoint, or the endpoint it was sent to
    issuer = p.settings.issuer
    audiences = dict.fromkeys((issuer, issuer + PATHS["token_endpoint"], issuer + PATHS[endpoint]))
    await client_assertion.verify(p, client, assertion, list(audiences))
    return client


async def _count_failure(p: Provider, pair: tuple[str, str]) -> None:
    """Count the failure; lock the pair once it reaches the limit; 429 past the limit (counted
    elsewhere, or by a burst of concurrent guesses)."""
    limit, window, now = p.settings.client_auth_max_failures, p.settings.client_auth_failure_window, p.now()
    start = now - now % window
    client_id, remote = pair
    [(failures, _ttl)] = await p.store.limits.count_attempt([f"client:{client_id}:{remote}:{start}"], window)
    if failures < limit:
        return
    if failures == limit:
        events.client_auth_throttled(client_id, remote)
    p.client_lockouts.lock(pair, start + window, now)
    if failures > limit:
        raise SlowDown(start + window - now, "too many failed client authentications")
