"""The Valkey/Redis store: one object per domain, over one connection (store/connection.py).

Key names: store/keyspace.py (every one is built there); Lua: store/lua/*.lua (store/scripts.py).
Each domain module says which keys it writes and how its writes fit Valkey Cluster's slots:
  store.clients   store/clients.py     client records, dynamic registration (RFC 7591/7592)
  store.users     store/users.py       user records
  store.refresh   store/refresh.py     refresh-token families and their rotation
  store.denylist  store/denylist.py    the deny-list and the revocation feed
  store.sessions  store/sessions.py    SSO sessions, pending logins, pushed requests, codes
  store.devices   store/device.py      device authorizations (RFC 8628)
  store.logouts   store/backchannel.py back-channel logout: sessions' clients, the delivery queue
  store.mfa       store/mfa.py         second factors: TOTP secrets, recovery codes
  store.passkeys  store/passkeys.py    passkeys (WebAuthn credentials) and their challenges
  store.consents  store/consents.py    what each user allowed each client (the consent page)
  store.managed   store/managed.py     what `tokensrv apply` manages (its --prune removes only those)
  store.claim_rules  store/claim_rules.py  the claim rules document (scopes and claim mappings)
  store.limits, store.locks, store.nonces   store/guards.py   rate limits, locks, one-time values
The protocol code is typed against the Protocols of store/protocols.py, not these classes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tokensrv.store import upgrade
from tokensrv.store.backchannel import LogoutStore
from tokensrv.store.claim_rules import ClaimRulesStore
from tokensrv.store.clients import ClientStore
from tokensrv.store.connection import Connection
from tokensrv.store.consents import ConsentStore
from tokensrv.store.denylist import DenyListStore
from tokensrv.store.device import DeviceStore
from tokensrv.store.guards import LockStore, NonceStore, RateLimitStore
from tokensrv.store.managed import ManagedStore
from tokensrv.store.mfa import SecondFactorStore
from tokensrv.store.passkeys import PasskeyStore
from tokensrv.store.refresh import RefreshStore
from tokensrv.store.sessions import SessionStore
from tokensrv.store.users import UserStore
from tokensrv.verify.store_url import StoreClient

if TYPE_CHECKING:
    from tokensrv.store.cache import ClientCache


class RedisStore:
    """The store on one Valkey server (or a Sentinel-managed primary) or on a Valkey Cluster."""

    client_cache: ClientCache | None = None  # a CachingStore's (store/cache.py)

    def __init__(self, redis: StoreClient, durable_replicas: int = 0) -> None:
        self.redis = redis
        self.conn = Connection(redis, durable_replicas)
        self.clients = ClientStore(self.conn)
        self.users = UserStore(self.conn)
        self.refresh = RefreshStore(self.conn)
        self.denylist = DenyListStore(self.conn)
        self.sessions = SessionStore(self.conn)
        self.devices = DeviceStore(self.conn)
        self.logouts = LogoutStore(self.conn)
        self.limits = RateLimitStore(self.conn)
        self.mfa = SecondFactorStore(self.conn)
        self.passkeys = PasskeyStore(self.conn)
        self.consents = ConsentStore(self.conn)
        self.managed = ManagedStore(self.conn)
        self.claim_rules = ClaimRulesStore(self.conn)
        self.locks = LockStore(self.conn)
        self.nonces = NonceStore(self.conn)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def upgrade_layout(self) -> int:
        """What an earlier release wrote, converted once per store (store/upgrade.py)."""
        return await upgrade.upgrade_layout(self.redis)
