"""A client's metadata, one value from `tokensrv client add` and from RFC 7591 registration to the
stored record (clients.new_client checks it and builds the record).

Fields are named as RFC 7591 §2 (and the RFCs that add to it) names them, so that an error can
name the field at fault and each surface spells it its own way: registration by the field itself,
the CLI by its flag (cli/client_flags.CLIENT_FLAGS). A new client field is: a field here, a flag there (or
an entry in ONLY), and the code that uses it (the stored record, clients.new_client).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ClientMetadata:
    """What is asked of a new client, unchecked (clients.new_client checks it all, once)."""
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()  # empty: clients.default_grant_types
    token_endpoint_auth_method: str | None = None  # None: from `public`
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    scope: tuple[str, ...] = ()  # RFC 7591 spells it space-separated; here one per entry
    post_logout_redirect_uris: tuple[str, ...] = ()  # OIDC RP-Initiated Logout §3.1
    require_pushed_authorization_requests: bool = False  # RFC 9126 §6
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2
    backchannel_logout_uri: str | None = None  # OIDC Back-Channel Logout §2.2
    backchannel_logout_session_required: bool = True
    client_name: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    allowed_origins: tuple[str, ...] = ()  # tokensrv's: where its browser app runs (CORS; origins.py)
    require_mfa: bool = False  # tokensrv's: a second factor at every sign-in for it
    # tokensrv's own, decided by an operator only
    public: bool = False
    audience: str | None = None
    first_party: bool = False
    consent_required: bool = False  # the consent page even when added by an operator (registered: always)
    exchange_audiences: tuple[str, ...] = ()  # RFC 8693
    admin: bool = False  # may get tokensrv:admin tokens (the admin API); never by registration

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # lists are welcome; the value keeps tuples
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))


Surface = Literal["cli", "registration"]

# The fields one surface only sets (the other leaves them at their defaults): what only an
# operator may decide (a registering client never does), or what the CLI has no flag for.
ONLY: dict[str, Surface] = {
    "public": "cli", "audience": "cli", "first_party": "cli", "consent_required": "cli",
    "exchange_audiences": "cli", "admin": "cli",
    "backchannel_logout_session_required": "registration",
}


def fields_from(surface: Surface) -> tuple[str, ...]:
    """The fields `surface` sets, in their order."""
    return tuple(f.name for f in dataclasses.fields(ClientMetadata) if ONLY.get(f.name, surface) == surface)


# each field's value when unset: `--unset-consent` or a PATCH's null puts a switch back to False
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ClientMetadata)}


@dataclass(frozen=True)
class MetadataChange:
    """What `tokensrv client update` changes of a client's metadata: fields set (None: back to
    unset), and values added to or removed from its lists. new_client checks the result again."""
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    added: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    removed: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def fields(self) -> list[str]:
        """The fields it changes (what the audit line names: never their values)."""
        lists = {f for f, v in (*self.added.items(), *self.removed.items()) if v}
        return sorted({*self.values, *lists})

    def missing(self, metadata: ClientMetadata) -> list[tuple[str, str]]:
        """(field, value) pairs it would remove that `metadata` does not have: a mistyped value."""
        return [(f, v) for f, values in self.removed.items() for v in values if v not in getattr(metadata, f)]

    def apply(self, metadata: ClientMetadata) -> ClientMetadata:
        changed: dict[str, Any] = {f: _DEFAULTS[f] if v is None else v for f, v in self.values.items()}
        for field in {*self.added, *self.removed}:
            kept = (*getattr(metadata, field), *self.added.get(field, ()))
            changed[field] = tuple(v for v in dict.fromkeys(kept) if v not in self.removed.get(field, ()))
        return dataclasses.replace(metadata, **changed)
