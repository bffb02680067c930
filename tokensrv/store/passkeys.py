"""Passkeys (WebAuthn credentials) in Valkey: each user's credentials, who owns a credential id
(discoverable sign-in: the browser names the credential, not the user), and ceremony challenges.

Keys (store/keyspace.py):
  passkeys:<sub>            hash: `c:<credential id>` the credential (JSON: public key, name,
                            transports, created, backed-up flag) and `n:<credential id>` its sign
                            counter, `u:<credential id>` its last use (epoch s); no TTL
  passkey-owner:<cred id>   -> sub, for a credential id presented without a username
  passkey-challenge:<sha>   a ceremony's challenge (JSON), by the challenge's SHA-256; taken once
Each write touches one key (Cluster-safe). A credential is added owner first (SET NX: a credential
id already registered, to anyone, is refused, WebAuthn §7.1 step 26), then the hash; removed hash
first, and its owner only if it was this user's; a look-up checks both: a half-written credential
signs nobody in.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from tokensrv.store import keyspace, scripts
from tokensrv.store.connection import Connection

_CREDENTIAL, _COUNTER, _USED = "c:", "n:", "u:"


@dataclass(frozen=True)
class Passkey:
    """A registered credential. `credential_id` and `public_key` are base64url; `synced`: the
    authenticator said it is backed up (backup eligible, WebAuthn §6.1 BE flag), a synced passkey."""
    credential_id: str
    public_key: str
    name: str
    created: int
    transports: tuple[str, ...] = ()
    synced: bool = False
    sign_count: int = 0
    last_used: int = 0


@dataclass(frozen=True)
class Challenge:
    """What an options call promised: for which ceremony ("register", "signin", "second",
    "confirm"), to which browser (the CSRF cookie's digest), for whom (empty: not known yet)."""
    ceremony: str
    browser: str
    sub: str = ""
    request_id: str = ""


def challenge_digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


class PasskeyStore:
    """`store.passkeys`."""

    def __init__(self, conn: Connection) -> None:
        self.redis = conn.redis
        self._use = conn.script(scripts.PASSKEY_USE)

    async def list_passkeys(self, sub: str) -> list[Passkey]:
        fields = {_text(k): _text(v) for k, v in (await self.redis.hgetall(keyspace.passkeys(sub))).items()}
        found = [_passkey(name[len(_CREDENTIAL):], value, fields) for name, value in fields.items()
                 if name.startswith(_CREDENTIAL)]
        return sorted(found, key=lambda key: (key.created, key.credential_id))

    async def add_passkey(self, sub: str, key: Passkey) -> bool:
        """False, and nothing written, if the credential id is registered already (to anyone)."""
        if not await self.redis.set(keyspace.passkey_owner(key.credential_id), sub, nx=True):
            return False
        record = {k: v for k, v in asdict(key).items() if k not in ("credential_id", "sign_count", "last_used")}
        await self.redis.hset(keyspace.passkeys(sub), mapping={
            _CREDENTIAL + key.credential_id: json.dumps(record), _COUNTER + key.credential_id: str(key.sign_count)})
        return True

    async def owner_of(self, credential_id: str) -> tuple[str, Passkey] | None:
        """Whose credential this is, and the credential; None if nobody's (or removed)."""
        raw = await self.redis.get(keyspace.passkey_owner(credential_id))
        sub = _text(raw) if raw else None
        keys = await self.list_passkeys(sub) if sub else []
        found = [key for key in keys if key.credential_id == credential_id]
        return (sub, found[0]) if sub and found else None

    async def remove_passkey(self, sub: str, credential_id: str) -> bool:
        removed = int(await self.redis.hdel(keyspace.passkeys(sub), *(
            prefix + credential_id for prefix in (_CREDENTIAL, _COUNTER, _USED))))
        if removed:  # never another user's index entry: a credential id is no secret
            await self.redis.delete(keyspace.passkey_owner(credential_id))
        return removed > 0

    async def remove_all_passkeys(self, sub: str) -> int:
        keys = await self.list_passkeys(sub)
        await self.redis.delete(keyspace.passkeys(sub))
        for key in keys:
            await self.redis.delete(keyspace.passkey_owner(key.credential_id))
        return len(keys)

    async def use_passkey(self, sub: str, credential_id: str, sign_count: int, now: int) -> int:
        """Record a use and its signature counter, compared and set in one Lua call (WebAuthn
        §6.1.1): 1 recorded; 0 the counter did not go up though one of them is non-zero (a cloned
        authenticator, or a replay of an older assertion); -1 the credential is gone."""
        return int(await self._use(keys=[keyspace.passkeys(sub)], args=[credential_id, sign_count, now]))

    async def put_challenge(self, challenge: bytes, record: Challenge, ttl: int) -> None:
        await self.redis.set(keyspace.passkey_challenge(challenge_digest(challenge)),
                             json.dumps(asdict(record)), ex=ttl)

    async def take_challenge(self, challenge: bytes) -> Challenge | None:
        """Atomically (GETDEL): a challenge answers one ceremony, once."""
        raw = await self.redis.getdel(keyspace.passkey_challenge(challenge_digest(challenge)))
        return Challenge(**json.loads(raw)) if raw else None


def _passkey(credential_id: str, value: str, fields: dict[str, str]) -> Passkey:
    record = json.loads(value)
    return Passkey(credential_id=credential_id, public_key=record["public_key"], name=record["name"],
                   created=int(record["created"]), transports=tuple(record.get("transports", ())),
                   synced=bool(record.get("synced")), sign_count=int(fields.get(_COUNTER + credential_id, 0)),
                   last_used=int(fields.get(_USED + credential_id, 0)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
