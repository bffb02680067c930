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
from .client_keys import ClientKeys, no_fetch


@dataclass
class Provider:
    """Everything the protocol code needs, handed in rather than found in globals."""
    settings: Settings
    store: RedisStore
    keys: KeyManager
    passwords: PasswordPool
    clock: Callable[[], float]
    client_lockouts: Lockouts = field(default_factory=Lockouts)  # this process's (oauth/client_auth.py)
    client_keys: ClientKeys | None = None  # jwks_uri cache (oauth/client_keys.py); None: no fetching
    dpop_nonce_secret: bytes | None = field(default=None, repr=False)  # read once (oauth/dpop.py)

    def __post_init__(self) -> None:
        if self.client_keys is None:
            self.client_keys = ClientKeys(no_fetch, self.clock)

    def now(self) -> int:
        return int(self.clock())

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
