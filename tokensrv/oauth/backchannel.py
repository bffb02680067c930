"""OpenID Connect Back-Channel Logout 1.0: tell each client of an ended session, server to server.

Who to tell: every client with a `backchannel_logout_uri` that got tokens under a session is
noted with the session (tokens.issue_for_user). When the session ends (logout, sign out
everywhere, disable, new password, removal), those notes are taken, atomically, and one job per
(client, session) goes into a queue in the store that every server process shares: the CLI,
which may run elsewhere, only queues. A server process takes each job (one process per job:
store/backchannel.py), signs the logout token then, and POSTs it (tokensrv/server/outbound/logout_delivery.py).

What the answer means (§2.8): 200 (or 204) delivered; 5xx, 408, 429 or no answer: tried again
later, up to TOKENSRV_BACKCHANNEL_MAX_ATTEMPTS; anything else (400: the client refused the token,
or a redirect, which is not followed) is final. Nothing here knows HTTP beyond those numbers.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from tokensrv.oauth import Provider
from tokensrv.oauth.own_tokens import new_jti, sign
from tokensrv.observability import events
from tokensrv.store import Client
from tokensrv.store.backchannel import LogoutJob

EVENT = "http://schemas.openid.net/event/backchannel-logout"  # §2.4
LOGOUT_TOKEN_TYPE = "logout+jwt"  # §2.4 (the draft's "typ" recommendation, now the RFC's)
LOGOUT_TOKEN_TTL = 120  # seconds: a logout token is used at once; a short life bounds its replay
MAX_RETRY_DELAY = 300.0


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REFUSED = "refused"  # final: the client said no, or answered something we do not follow
    RETRY = "retry"


def outcome_of(status: int | None) -> Outcome:
    """What a POST's answer means; None: no answer (timeout, connection refused or reset)."""
    if status in (200, 204):
        return Outcome.DELIVERED
    if status is None or status >= 500 or status in (408, 429):
        return Outcome.RETRY
    return Outcome.REFUSED


def retry_delay(attempts: int, first_delay: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling, capped."""
    return min(MAX_RETRY_DELAY, first_delay * 2.0 ** max(0, attempts - 1))


def logout_claims(p: Provider, client: Client, job: LogoutJob) -> dict[str, Any]:
    """§2.4: iss, aud, iat, exp, jti, sub, sid, events; never a nonce (§2.4: an ID token's)."""
    now = p.now()
    return {"iss": p.settings.issuer, "aud": client.client_id, "iat": now, "exp": now + LOGOUT_TOKEN_TTL,
            "jti": new_jti(), "sub": job.sub, "sid": job.sid, "events": {EVENT: {}}}


def logout_token(p: Provider, client: Client, job: LogoutJob) -> str:
    """Signed like ID tokens (the current key), with its own typ so no other token passes as one."""
    return sign(p, logout_claims(p, client, job), LOGOUT_TOKEN_TYPE)


async def sessions_ended(p: Provider, sub: str, sids: Sequence[str]) -> int:
    """The sessions `sids` of `sub` ended: queue a logout for each of their clients."""
    if not sids:
        return 0
    taken = await p.store.logouts.take_session_clients(sub, sids, p.now())
    return await _enqueue(p, sub, taken)


async def user_signed_out(p: Provider, sub: str) -> int:
    """Every session of `sub` ended (its not-before moved): queue a logout for each client."""
    taken = await p.store.logouts.take_session_clients(sub, (), p.now())
    return await _enqueue(p, sub, taken)


async def _enqueue(p: Provider, sub: str, taken: Sequence[tuple[str, str]]) -> int:
    jobs = [LogoutJob(client_id, sub, sid) for sid, client_id in taken]
    queued = await p.store.logouts.enqueue_logouts(jobs, p.settings.backchannel_queue_max)
    for job in jobs[queued:]:  # the session still ends: only this client is not told
        events.backchannel_logout("queue_full", job.client_id, job.sid)
    return queued

