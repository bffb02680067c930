"""The account page's sessions section: the user's live SSO sessions (from the per-user index,
store/sessions.py), and ending one other session or all others.

Ending one does what logout does for it (oauth/browser/sessions.py `revoke`: its sids revoked, its
applications told by back-channel logout). A form names a session by its sid; the server ends it
only when it is among the signed-in user's own live sessions, and never the current one (that is
the Sign out button's job), so a forged form can end nothing of anyone else's.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from tokensrv.oauth import Provider
from tokensrv.oauth.browser import sessions as browser_sessions
from tokensrv.oauth.browser.account.page import Account, SessionView, Visit, replace, require_recent
from tokensrv.observability import events
from tokensrv.store import BrowserSession, User

GONE = "That session has ended already. The list below is up to date."

# the few big families, most specific first (Edge and Opera say Chrome too; Chrome says Safari)
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), (r"iPhone|iPad", "iOS"), ("CrOS", "ChromeOS"), ("Windows", "Windows"),
            ("Mac OS X|Macintosh", "macOS"), ("Linux", "Linux"))


def device_of(agent: str) -> str:
    """"Firefox on Linux" from a User-Agent; "" when it names none of the families we know."""
    browser = next((name for mark, name in _BROWSERS if mark in agent), "")
    system = next((name for mark, name in _SYSTEMS if re.search(mark, agent)), "")
    return " on ".join(filter(None, (browser, system)))


async def live(p: Provider, user: User) -> list[tuple[str, BrowserSession]]:
    """The user's sessions that still stand, by digest; the index forgets the others."""
    found = []
    for digest in await p.store.sessions.session_digests(user.sub, p.now()):
        session = await p.store.sessions.get_session(digest)
        if session is None or not await browser_sessions.alive(p, session, user):
            await p.store.sessions.unindex_session(user.sub, digest)
        else:
            found.append((digest, session))
    return found


async def listed(p: Provider, user: User, visit: Visit) -> tuple[SessionView, ...]:
    """This browser's first, then by last use."""
    names: dict[str, str] = {}
    views = []
    for digest, session in await live(p, user):
        client_ids = await p.store.sessions.session_clients(session.sid)
        apps = [await _client_name(p, client_id, names) for client_id in client_ids]
        views.append(SessionView(session.sid, digest == visit.digest, session.address, device_of(session.agent),
                                 session.auth_time, session.last_seen, "otp" in session.amr or "mfa" in session.amr,
                                 tuple(apps)))
    return tuple(sorted(views, key=lambda v: (not v.current, -v.last_seen)))


async def _client_name(p: Provider, client_id: str, names: dict[str, str]) -> str:
    if client_id not in names:
        client = await p.store.clients.get_client(client_id)
        names[client_id] = (client.client_name or client_id) if client is not None else client_id
    return names[client_id]


async def end_session(p: Provider, user: User, digest: str) -> bool:
    """Logout for that session: its record taken (once, of two concurrent ends), then revoked."""
    taken = await p.store.sessions.take_session(digest)
    if taken is None or taken.sub != user.sub:
        return False
    await browser_sessions.revoke(p, taken)
    return True


async def end_one(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    sid = params.get("sid", "")[:128]
    target = [d for d, s in await live(p, shown.user) if s.sid == sid and d != visit.digest]
    if not target or not await end_session(p, shown.user, target[0]):
        return replace(shown, section="sessions", error=GONE)
    events.account_changed("session_ended", shown.user.sub, visit.remote, sid=sid)
    return replace(shown, section="sessions", notice="That session is signed out.")


async def end_others(p: Provider, shown: Account, params: Mapping[str, str], visit: Visit) -> Account:
    asked = await require_recent(p, shown, params, visit, "sessions")
    if asked is not None:
        return asked
    ended = [d for d, _ in await live(p, shown.user) if d != visit.digest and await end_session(p, shown.user, d)]
    events.account_changed("other_sessions_ended", shown.user.sub, visit.remote, count=str(len(ended)))
    notice = "You are signed out everywhere else." if ended else "There were no other sessions to sign out."
    return replace(shown, section="sessions", notice=notice)
