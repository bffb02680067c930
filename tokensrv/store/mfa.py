"""Second factors in Valkey: a user's TOTP secret and recovery codes (RFC 6238).

Keys (store/keyspace.py):
  mfa:<sub>        hash: `secret` (base32), `step` (the last time-step used: no code twice),
                   `enrolled` (epoch s), `rc:<digest>` one field per unused recovery code (SHA-256)
  mfa-setup:<sub>  the secret shown at enrolment, until a first code confirms it or it expires
Each write touches one key (Cluster-safe). The secret is kept as the authenticator app has it:
the store is trusted with it as with every session; it is never logged, put in a token or an error.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from redis.typing import EncodableT, FieldT

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection

RECOVERY_FIELD = "rc:"


@dataclass(frozen=True)
class SecondFactor:
    """A confirmed TOTP enrolment."""
    secret: str
    enrolled: int
    last_step: int
    recovery_left: int


class SecondFactorStore:
    """`store.mfa`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._use_step = conn.script(scripts.MFA_USE_STEP)

    async def get_second_factor(self, sub: str) -> SecondFactor | None:
        fields = await self.redis.hgetall(keyspace.second_factor(sub))
        decoded = {_text(k): _text(v) for k, v in fields.items()}
        if "secret" not in decoded:
            return None
        left = sum(1 for name in decoded if name.startswith(RECOVERY_FIELD))
        return SecondFactor(decoded["secret"], int(decoded.get("enrolled", 0)), int(decoded.get("step", -1)), left)

    async def put_setup(self, sub: str, secret: str, ttl: int) -> None:
        await self.redis.set(keyspace.second_factor_setup(sub), secret, ex=ttl)

    async def get_setup(self, sub: str) -> str | None:
        raw = await self.redis.get(keyspace.second_factor_setup(sub))
        return _text(raw) if raw else None

    async def enrol(self, sub: str, secret: str, step: int, recovery_digests: list[str], now: int) -> None:
        """The confirmed secret replaces any earlier one; the confirming code's step counts as used."""
        key = keyspace.second_factor(sub)
        mapping: dict[FieldT, EncodableT] = {"secret": secret, "step": str(step), "enrolled": str(now),
                   **{RECOVERY_FIELD + digest: "1" for digest in recovery_digests}}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            await pipe.execute()
        await self.redis.delete(keyspace.second_factor_setup(sub))

    async def use_step(self, sub: str, step: int) -> bool:
        """True once per time-step per user (one Lua call: of two concurrent uses one wins)."""
        return int(await self._use_step(keys=[keyspace.second_factor(sub)], args=[step])) == 1

    async def use_recovery_code(self, sub: str, digest: str) -> bool:
        """True if `digest` is an unused recovery code's, which is then spent (HDEL: used once)."""
        key = keyspace.second_factor(sub)
        names = [_text(name) for name in await self.redis.hkeys(key)]
        # compared in constant time, every name: the answer's timing says nothing of the codes
        found = [name for name in names if name.startswith(RECOVERY_FIELD)
                 and hmac.compare_digest(name[len(RECOVERY_FIELD):].encode(), digest.encode())]
        return bool(found) and int(await self.redis.hdel(key, found[0])) == 1

    async def remove_second_factor(self, sub: str) -> bool:
        removed = await self.redis.delete(keyspace.second_factor(sub))
        await self.redis.delete(keyspace.second_factor_setup(sub))
        return bool(removed)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
