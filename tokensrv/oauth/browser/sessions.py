"""SSO browser sessions (OIDC Core §3.1.2.3: authenticate once, then reuse the session).

The browser holds a random secret in a cookie; the store keys the session by the secret's SHA-256,
so a copy of the store holds no usable cookie. The session's `sid` is a different value: it
travels in ID tokens to every application, so it must never be what logs a browser in.
A session ends at its idle or absolute lifetime, at logout, or when its user is disabled, removed
or signed out everywhere (not-before after the session's creation).
"""
from __future__ import annotations

import dataclasses
import secrets

from tokensrv.oauth import Provider, backchannel
from tokensrv.oauth.auth_methods import AMR_PASSWORD
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.oauth.endpoints.revocation import revoke_session, user_is_current
from tokensrv.oauth.own_tokens import new_session_id
from tokensrv.store import BrowserSession, User

MAX_SECRET = 64  # a cookie longer than any we issue is not ours: no store look-up for it
MAX_AGENT = 256  # of a User-Agent kept on the session: enough for its browser and system
MAX_PREVIOUS = 16  # earlier sessions of the same user a browser keeps for logout to end


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def current(p: Provider, secret: str | None) -> BrowserSession | None:
    """The live session behind this cookie, its last use moved to now; None if there is none."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    digest = secret_digest(secret)
    session = await p.store.sessions.get_session(digest)
    user = await p.store.users.get_user(session.sub) if session is not None else None
    if session is None or user is None or not await alive(p, session, user):
        return None
    now = p.now()
    if now > session.last_seen:
        session = dataclasses.replace(session, last_seen=now)
        await p.store.sessions.touch_session(digest, session, p.settings.session_idle_ttl)
    return session


async def alive(p: Provider, session: BrowserSession, user: User) -> bool:
    """Within its lifetimes, its user not signed out since, its sid not revoked."""
    now = p.now()
    if now >= session.expires_at or now - session.last_seen >= p.settings.session_idle_ttl:
        return False
    if session.sub != user.sub or not user_is_current(user, session.created_ms):
        return False
    # its sid may have been revoked without this record: an RP logged out with an ID token elsewhere
    _, sid_revoked, _ = await p.store.denylist.denied("", session.sid, session.sub)
    return not sid_revoked


async def start(p: Provider, user: User, old_secret: str | None,
                amr: tuple[str, ...] = AMR_PASSWORD, where: tuple[str, str] = ("", "")) -> tuple[str, BrowserSession]:
    """A new session (new cookie secret, new sid: no fixation) for a user who just logged in;
    `amr` (RFC 8176) records how, for the tokens issued under it; `where`, the client address and
    User-Agent, what the account page shows of it.

    The browser's previous session record goes. If it was the same user's, its sids are kept so
    that logout still ends what was issued under them; if it was someone else's, it ends now.
    """
    previous = await p.store.sessions.take_session(secret_digest(old_secret)) if old_secret else None
    kept: tuple[str, ...] = ()
    if previous is not None and previous.sub == user.sub:
        kept = (previous.sid, *previous.previous_sids)[:MAX_PREVIOUS]
    elif previous is not None:
        await revoke(p, previous)
    now, secret = p.now(), new_secret()
    # after the user's not-before even within its millisecond: a password change keeps this browser in
    created_ms = max(p.now_ms(), user.not_before_ms + 1)
    session = BrowserSession(sid=new_session_id(), sub=user.sub, auth_time=now, created_ms=created_ms,
                             last_seen=now, expires_at=now + p.settings.session_ttl, previous_sids=kept, amr=amr,
                             address=where[0], agent=where[1][:MAX_AGENT])
    await p.store.sessions.put_session(secret_digest(secret), session, p.settings.session_idle_ttl)
    return secret, session


async def end(p: Provider, secret: str | None) -> BrowserSession | None:
    """Logout: the record goes, and with it every refresh family and access token of its sids."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    session = await p.store.sessions.take_session(secret_digest(secret))
    if session is not None:
        await revoke(p, session)
    return session


async def revoke(p: Provider, session: BrowserSession) -> None:
    """What logout does for a session whose record is gone: its sids revoked, its applications told."""
    for sid in sids_of(session):
        await revoke_session(p, sid)
    await backchannel.sessions_ended(p, session.sub, sids_of(session))  # once revoked: never before


def sids_of(session: BrowserSession | None) -> tuple[str, ...]:
    return () if session is None else (session.sid, *session.previous_sids)
