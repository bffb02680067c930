"""OAuth 2.0 / OpenID Connect protocol logic. Nothing here imports aiohttp: functions take plain
values (a form as a Mapping, headers) and return dicts or raise `tokensrv.errors.OAuthError`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Settings
from ..passwords import PasswordPool
from ..rotation import KeyManager
from ..store.redis import RedisStore
from .client_auth import Lockouts


@dataclass
class Provider:
    """Everything the protocol code needs, handed in rather than found in globals."""
    settings: Settings
    store: RedisStore
    keys: KeyManager
    passwords: PasswordPool
    clock: Callable[[], float]
    client_lockouts: Lockouts = field(default_factory=Lockouts)  # this process's (oauth/client_auth.py)
    dpop_nonce_secret: bytes | None = field(default=None, repr=False)  # read once (oauth/dpop.py)

    def now(self) -> int:
        return int(self.clock())

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
