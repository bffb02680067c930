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
MAX_PREVIOUS = 16  # earlier sessions of the same user a browser keeps for logout to end


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def current(p: Provider, secret: str | None) -> BrowserSession | None:
    """The live session behind this cookie, its last use moved to now; None if there is none."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    digest = secret_digest(secret)
    session = await p.store.sessions.get_session(digest)
    now = p.now()
    if session is None or now >= session.expires_at or now - session.last_seen >= p.settings.session_idle_ttl:
        return None
    user = await p.store.users.get_user(session.sub)
    if user is None or not user_is_current(user, session.created_ms):
        return None
    # its sid may have been revoked without this record: an RP logged out with an ID token elsewhere
    _, sid_revoked, _ = await p.store.denylist.denied("", session.sid, session.sub)
    if sid_revoked:
        return None
    if now > session.last_seen:
        session = dataclasses.replace(session, last_seen=now)
        await p.store.sessions.touch_session(digest, session, p.settings.session_idle_ttl)
    return session


async def start(p: Provider, user: User, old_secret: str | None,
                amr: tuple[str, ...] = AMR_PASSWORD) -> tuple[str, BrowserSession]:
    """A new session (new cookie secret, new sid: no fixation) for a user who just logged in;
    `amr` (RFC 8176) records how, for the tokens issued under it.

    The browser's previous session record goes. If it was the same user's, its sids are kept so
    that logout still ends what was issued under them; if it was someone else's, it ends now.
    """
    previous = await p.store.sessions.take_session(secret_digest(old_secret)) if old_secret else None
    kept: tuple[str, ...] = ()
    if previous is not None and previous.sub == user.sub:
        kept = (previous.sid, *previous.previous_sids)[:MAX_PREVIOUS]
    elif previous is not None:
        await _revoke(p, previous)
    now, secret = p.now(), new_secret()
    session = BrowserSession(sid=new_session_id(), sub=user.sub, auth_time=now, created_ms=p.now_ms(),
                             last_seen=now, expires_at=now + p.settings.session_ttl, previous_sids=kept, amr=amr)
    await p.store.sessions.put_session(secret_digest(secret), session, p.settings.session_idle_ttl)
    return secret, session


async def end(p: Provider, secret: str | None) -> BrowserSession | None:
    """Logout: the record goes, and with it every refresh family and access token of its sids."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    session = await p.store.sessions.take_session(secret_digest(secret))
    if session is not None:
        await _revoke(p, session)
    return session


async def _revoke(p: Provider, session: BrowserSession) -> None:
    for sid in sids_of(session):
        await revoke_session(p, sid)
    await backchannel.sessions_ended(p, session.sub, sids_of(session))  # once revoked: never before


def sids_of(session: BrowserSession | None) -> tuple[str, ...]:
    return () if session is None else (session.sid, *session.previous_sids)
