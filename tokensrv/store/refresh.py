"""Refresh-token families in Valkey (token digests as callers hold them: base64url text).

Key: rf:<family_id>, a list: one family (positions: lua/family.lua), with its live token's digest
and its access tokens' jtis; the scripts are store/lua/*.lua (store/scripts.py).

No index lists the families of a session: signing a user out (their not-before) and
ending a session (its `ended` marker) are enforced where a family is used (the refresh grant reads
both with the rotation; introspection checks them too), and the families expire.
The account page lists a user's families from user-rf:<sub> (a sorted set of family ids by their
absolute end, bounded like the session index: store/sessions.py), written beside the family. A
family trimmed from it stays alive (a service or script signing one user in thousands of times is
not an attack to answer by revoking its tokens): the page lists the latest MAX_INDEXED, and
signing the user out everywhere (their not-before) still ends every family.

Valkey Cluster: the refresh grant reads the family, its user and the session's `ended` marker:
three slots (a family is found by its id alone, so it cannot share the user's tag). On one server
the rotation script reads all three (one round trip); on Cluster the script checks and rotates the
family, then the user and the marker are read from their nodes at once (two round trips). Only the
family's part is atomic.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Sequence
from typing import Any

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection
from tokensrv.store.records import RefreshFamily, Reused, Rotated, RotateOutcome, User
from tokensrv.store.sessions import add_to_index, queue_index


class RefreshStore:
    """`store.refresh`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self.cluster = conn.cluster
        self._rotate = conn.script(scripts.ROTATE)
        self._read_family = conn.script(scripts.READ_FAMILY)
        self._delete_family = conn.script(scripts.DELETE_FAMILY)

    async def create_family(self, family: RefreshFamily, token_digest: str, jti: str, jti_exp: int,
                            idle_ttl: int) -> None:
        key = keyspace.family(family.family_id)
        created = family.created_ms // 1000
        idle_end = min(created + idle_ttl, family.expires_at)
        record: list[bytes | str | int] = [  # the positions lua/family.lua names
            _raw_digest(token_digest), f"{jti}+{jti_exp - created}",
            f"{family.client_id} {family.jkt}" if family.jkt else family.client_id,
            _pack_sub(family.sub), family.scope, family.sid, family.created_ms, family.expires_at,
            _sign_in(created - family.auth_time, family)]
        index = keyspace.user_families(family.sub)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *record)
            pipe.expireat(key, idle_end)
            if not self.cluster:  # one round trip on one server; on Cluster the index is another slot
                queue_index(pipe, index, family.family_id, family.expires_at, created)
            await pipe.execute()
        if self.cluster:
            await add_to_index(self.redis, index, family.family_id, family.expires_at, created)

    async def user_family_ids(self, sub: str, now: int) -> list[str]:
        """The user's families not past their absolute end (some may have been revoked)."""
        found = await self.redis.zrangebyscore(keyspace.user_families(sub), now, "+inf")
        return [f.decode() if isinstance(f, bytes) else str(f) for f in found]

    async def unindex_family(self, sub: str, family_id: str) -> None:
        await self.redis.zrem(keyspace.user_families(sub), family_id)

    async def rotate_with_user(self, family_id: str, presented: str, new_digest: str, client_id: str,
                               now: int, jti: str, jti_exp: int, idle_ttl: int, grace: int, *,
                               scope: Sequence[str] = (), max_life: int = 0, jkt: str = "",
                               ) -> tuple[RotateOutcome, User | None, bool]:
        """The refresh grant's store call: check the family (alive, also by `max_life` seconds
        after its creation when given; this client's; if bound to a DPoP key, to `jkt`, the
        thumbprint of the request's proof key; granted every `scope` token) and rotate its
        token, in one script, which answers a refusal without writing anything. After a rotation,
        also the family's user and whether its SSO session has ended (not atomically with it): on
        one server the script reads them (one round trip); on Cluster they are other slots, read
        at once from their nodes after the script (two)."""
        args = [*_rotate_args(presented, new_digest, client_id, now, jti, jti_exp, idle_ttl, grace),
                max_life, " ".join(scope), jkt]
        if not self.cluster:
            args += [keyspace.USER_PREFIX, keyspace.ENDED_PREFIX]
        reply = await self._rotate(keys=[keyspace.family(family_id)], args=args)
        outcome = _rotation(family_id, reply, now)
        if not isinstance(outcome, Rotated):
            return outcome, None, False
        if self.cluster:
            raw_user, ended = await asyncio.gather(self.redis.get(keyspace.user(outcome.family.sub)),
                                                   self.session_ended(outcome.family.sid))
        else:
            raw_user, ended = reply[3], reply[4] == 1
        return outcome, User.from_json(json.loads(raw_user)) if raw_user else None, ended

    async def get_family(self, family_id: str, token_digest: str = "") -> tuple[RefreshFamily, bool] | None:
        """The family while Valkey keeps it (callers check `live_until()` against their own
        clock), and whether `token_digest` is its live token's."""
        reply = await self._read_family(keys=[keyspace.family(family_id)],
                                        args=[_raw_digest(token_digest) if token_digest else ""])
        if not reply:
            return None
        return _family(family_id, dict(zip(reply[1::2], reply[2::2], strict=False))), reply[0] == 1

    async def revoke_family(self, family_id: str, now: int) -> tuple[tuple[str, int], ...]:
        raw = await self._delete_family(keys=[keyspace.family(family_id)])
        return _jti_list(raw or "", now)

    async def cap_idle(self, family_id: str, idle_end: int) -> None:
        """Bring a family's idle end forward to `idle_end` (never later: EXPIREAT LT)."""
        await self.redis.expireat(keyspace.family(family_id), idle_end, lt=True)

    async def session_ended(self, sid: str) -> bool:
        """Whether the SSO session `sid` ended (logout) within the refresh family lifetime (its
        marker is written by the deny-list's revocation of the sid: store/denylist.py)."""
        return bool(sid) and bool(await self.redis.exists(keyspace.ended(sid)))


def _jti_list(raw: str, now: int | None = None) -> tuple[tuple[str, int], ...]:
    entries = []
    for entry in filter(None, raw.split(";")):
        jti, _, exp = entry.partition(" ")
        if now is None or int(exp) > now:
            entries.append((jti, int(exp)))
    return tuple(entries)


def _rotation(family_id: str, reply: list[Any], now: int) -> RotateOutcome:
    outcome, extra = reply[0], reply[1]
    if outcome in ("unknown", "wrong_client", "wrong_key", "invalid_scope"):
        return outcome  # type: ignore[no-any-return]
    family = _family(family_id, dict(zip(reply[2][::2], reply[2][1::2], strict=False)))
    if outcome == "reused":
        return Reused(family, _jti_list(extra, now))
    return Rotated(family, _jti_list(extra, now))


def _family(family_id: str, fields: dict[str, Any]) -> RefreshFamily:
    """A family from the fields the scripts answer with (lua/family.lua: `fields`)."""
    return RefreshFamily(
        family_id=family_id, client_id=fields["c"], sub=_unpack_sub(fields["s"]), scope=fields["sc"],
        created_ms=int(fields["ca"]), expires_at=int(fields["ea"]), sid=fields["si"],
        auth_time=int(fields["at"]), idle_expires_at=max(0, int(fields["ie"])), jkt=fields["k"],
        amr=tuple(filter(None, fields.get("am", "").split(","))), acr=fields.get("ac", ""),
    )


def _sign_in(seconds: int, family: RefreshFamily) -> str | int:
    """Position 9 (lua/family.lua): the seconds from the sign-in, then its amr and any acr told
    instead of the amr's, only when known (a family without them costs no byte more)."""
    if not family.amr:
        return seconds
    return " ".join(filter(None, (str(seconds), ",".join(family.amr), family.acr)))


def _rotate_args(presented: str, new_digest: str, client_id: str, now: int, jti: str, jti_exp: int,
                 idle_ttl: int, grace: int) -> list[bytes | str | int]:
    return [_raw_digest(presented), _raw_digest(new_digest), client_id, now, jti, jti_exp, idle_ttl, grace]


def _raw_digest(digest: str) -> bytes:
    """A token's SHA-256 as callers hold it (base64url, 43 characters) -> the 32 bytes stored."""
    raw = base64.urlsafe_b64decode(digest + "=")
    if len(raw) != 32:
        raise ValueError("not a base64url SHA-256 digest")
    return raw


# A sub as `user add` makes it, 32 lowercase hex digits, is stored as its 16 bytes in base64url
# (22 characters); any other sub as "=" and itself (base64url has no "=").
_HEX_SUB = re.compile("[0-9a-f]{32}")


def _pack_sub(sub: str) -> str:
    if _HEX_SUB.fullmatch(sub):
        return base64.urlsafe_b64encode(bytes.fromhex(sub)).rstrip(b"=").decode()
    return "=" + sub


def _unpack_sub(packed: str) -> str:
    return packed[1:] if packed.startswith("=") else base64.urlsafe_b64decode(packed + "==").hex()
