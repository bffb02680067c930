"""Device authorizations (RFC 8628) in Valkey: `store.devices`.

Keys (store/keyspace.py; each one key per command or script, so Cluster-safe):
  device:<sha256 of the device code>  hash, until the code's end plus EXPIRED_GRACE:
      c client id   sc scope   e end (epoch s)   i poll interval (s)   l last poll (epoch ms)
      s pending | approved | denied | done        a the approval (JSON DeviceApproval), until polled
  usercode:<sha256 of the user code>  -> the device key's digest, until the code's end;
      deleted once the user approves or denies: a user code is decided once

The device code is a 256-bit secret and the user code a short one: only their digests are keys.
The device record outlives its code by EXPIRED_GRACE so that a late poll is told `expired_token`
(the record's own end, against the injected clock) rather than that the code is unknown.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection

EXPIRED_GRACE = 600  # seconds a device record stays after its end, to answer expired_token
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5: slow_down adds 5 seconds to the interval, for good


@dataclass(frozen=True)
class DeviceApproval:
    """The SSO session that approved a device: the tokens are issued under its sid."""
    sub: str
    sid: str
    auth_time: int
    session_created_ms: int
    scope: str
    amr: tuple[str, ...] = ()  # how the approving session signed in (RFC 8176); () before it was kept

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PendingDevice:
    """What the verification page shows: who asks, for what, until when."""
    device_digest: str
    client_id: str
    scope: str
    expires_at: int
    status: str


PollOutcome = Literal["unknown", "wrong_client", "expired", "used", "slow_down", "pending", "denied"]


class DeviceStore:
    """`store.devices`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._poll_device = conn.script(scripts.DEVICE_POLL)
        self._decide_device = conn.script(scripts.DEVICE_DECIDE)

    async def put_device(self, device_digest: str, user_code_digest: str, client_id: str, scope: str,
                         expires_at: int, interval: int, ttl: int) -> bool:
        """Record a new device authorization; False if the user code is taken (draw another)."""
        if not await self.redis.set(keyspace.user_code(user_code_digest), device_digest, nx=True, ex=ttl):
            return False
        key = keyspace.device(device_digest)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"c": client_id, "sc": scope, "e": expires_at, "i": interval,
                                    "s": "pending"})
            pipe.expire(key, ttl + EXPIRED_GRACE)
            await pipe.execute()
        return True

    async def find_device(self, user_code_digest: str) -> PendingDevice | None:
        """The device authorization a user code names, while it is undecided."""
        device_digest = await self.redis.get(keyspace.user_code(user_code_digest))
        if not device_digest:
            return None
        client_id, scope, expires_at, status = await self.redis.hmget(
            keyspace.device(str(device_digest)), ["c", "sc", "e", "s"])
        if client_id is None:
            return None
        return PendingDevice(str(device_digest), str(client_id), str(scope), int(expires_at or 0), str(status))

    async def decide_device(self, user_code_digest: str, device_digest: str,
                            approval: DeviceApproval | None, now_ms: int) -> bool:
        """Approve (with the session) or deny (None); False if it was decided or ended already."""
        decided = await self._decide_device(
            keys=[keyspace.device(device_digest)],
            args=["approved" if approval else "denied",
                  json.dumps(approval.to_json()) if approval else "", now_ms])
        await self.redis.delete(keyspace.user_code(user_code_digest))  # a user code is decided once
        return bool(decided)

    async def poll_device(self, device_digest: str, client_id: str, now_ms: int
                          ) -> tuple[PollOutcome, int] | DeviceApproval:
        """One poll: the approval (the code is spent), or the outcome and the current interval."""
        outcome, value = await self._poll_device(keys=[keyspace.device(device_digest)],
                                                 args=[client_id, now_ms, SLOW_DOWN_STEP])
        if outcome == "approved":
            approval = json.loads(value)
            return DeviceApproval(**{**approval, "amr": tuple(approval.get("amr", ()))})
        return outcome, int(value or 0)
