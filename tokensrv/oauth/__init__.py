"""OAuth 2.0 / OpenID Connect protocol logic. Nothing here imports aiohttp: functions take plain
values (a form as a Mapping, headers) and return dicts or raise `tokensrv.errors.OAuthError`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tokensrv.config import Settings
from tokensrv.keys.manager import KeyManager
from tokensrv.keys.signing import SigningKey, jws_signature
from tokensrv.oauth.clients.authentication import Lockouts
from tokensrv.oauth.clients.keys import ClientKeys, no_fetch
from tokensrv.oauth.live_rules import LiveRules
from tokensrv.passwords import PasswordPool
from tokensrv.store import Store


@dataclass
class Provider:
    """Everything the protocol code needs, handed in rather than found in globals."""
    settings: Settings
    store: Store  # a RedisStore, or its tracing proxy (server/tracing.py)
    keys: KeyManager
    passwords: PasswordPool
    clock: Callable[[], float]
    client_lockouts: Lockouts = field(default_factory=Lockouts)  # this process's (oauth/clients/authentication.py)
    client_keys: ClientKeys | None = None  # jwks_uri cache (oauth/clients/keys.py); None: no fetching
    dpop_nonce_secret: bytes | None = field(default=None, repr=False)  # read once (oauth/dpop.py)
    # Seams for tracing (tokensrv/server/tracing.py replaces them when tracing is configured, and only
    # then): how a token is signed, and what the protocol code tells about the request it serves
    # (the authenticated client_id, the grant type) so the request's span can carry it.
    signature: Callable[[SigningKey, bytes], bytes] = field(default=jws_signature, repr=False)
    annotate: Callable[[str, str], None] = field(default=lambda attribute, value: None, repr=False)
    # the claim rules in effect (oauth/live_rules.py): the store's document, else settings.claims
    claim_rules: LiveRules = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.claim_rules = LiveRules(self.settings.claims)
        if self.client_keys is None:
            self.client_keys = ClientKeys(no_fetch, self.clock)

    def now(self) -> int:
        return int(self.clock())

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
