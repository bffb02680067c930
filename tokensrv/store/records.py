"""The records tokensrv keeps in Valkey, as the protocol code sees them (the store's domain
modules write and read them: store/clients.py, users.py, refresh.py, denylist.py, sessions.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


class Conflict(Exception):
    """A record with that name already exists (client id, username)."""


class Missing(Exception):
    """No record with that name."""


SECRET_METHODS = ("client_secret_basic", "client_secret_post")  # the same secret, either way


@dataclass(frozen=True)
class Client:
    client_id: str
    secret_digest: str | None  # SHA-256 of the generated secret; None without a secret
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    first_party: bool = False
    post_logout_redirect_uris: tuple[str, ...] = ()
    created_at: int = 0
    exchange_audiences: tuple[str, ...] = ()  # RFC 8693: audiences it may exchange tokens for
    # RFC 7591 §2 names. "" (records written before the field existed): derived from the secret,
    # client_secret_basic (which accepts client_secret_post too) or none
    token_endpoint_auth_method: str = ""
    jwks: dict[str, Any] | None = None  # private_key_jwt: the client's public keys ...
    jwks_uri: str | None = None  # ... or where to fetch them (oauth/clients/keys.py)
    require_pushed_authorization_requests: bool = False  # RFC 9126 §6
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: every token request must carry a proof
    # OIDC Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed when a session ends, and
    # whether the client needs the `sid` claim in them (tokensrv always sends it)
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = True
    # RFC 7591 §2 metadata people see on the login page (oauth/client_display.py checks the URIs)
    client_name: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    # RFC 7592: SHA-256 of the registration access token of a client registered over HTTP (None:
    # added by an operator); its presence is what marks a client as registered
    registration_token_digest: str | None = None
    allowed_origins: tuple[str, ...] = ()  # web origins its browser app calls us from (CORS)
    require_mfa: bool = False  # tokensrv's: every sign-in for it needs a second factor (oauth/browser/step_up.py)
    consent_required: bool = False  # an operator's client that asks like a registered one (asks_consent)
    # `tokensrv client rotate-secret --overlap`: the secret before the last rotation (its SHA-256),
    # still accepted until previous_secret_expires_at (oauth/clients/metadata.check)
    previous_secret_digest: str | None = None
    previous_secret_expires_at: int = 0
    admin: bool = False  # an operator's mark: its client_credentials tokens may carry tokensrv:admin

    @property
    def registered(self) -> bool:
        """Registered over HTTP (RFC 7591) rather than by `tokensrv client add`."""
        return self.registration_token_digest is not None

    @property
    def asks_consent(self) -> bool:
        """Whether its users see the consent page (oauth/browser/consent.py): every registered
        client, and an operator's marked so; a first-party one never."""
        return not self.first_party and (self.registered or self.consent_required)

    def __post_init__(self) -> None:
        if not self.token_endpoint_auth_method:
            derived = "none" if self.secret_digest is None else "client_secret_basic"
            object.__setattr__(self, "token_endpoint_auth_method", derived)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def to_json(self) -> dict[str, Any]:
        """The record; the newer fields only when they differ from what a record without them
        means, so that an earlier release (which refuses unknown fields) reads ordinary clients."""
        data = dataclasses.asdict(self)
        derived = "none" if self.secret_digest is None else "client_secret_basic"
        if data["token_endpoint_auth_method"] == derived:
            del data["token_endpoint_auth_method"]
        for name in ("jwks", "jwks_uri", "require_pushed_authorization_requests", "dpop_bound_access_tokens",
                     "exchange_audiences", "backchannel_logout_uri", "client_name", "logo_uri", "policy_uri",
                     "tos_uri", "registration_token_digest", "allowed_origins", "require_mfa",
                     "consent_required", "previous_secret_digest", "previous_secret_expires_at", "admin"):
            if not data[name]:
                del data[name]
        if data["backchannel_logout_session_required"]:  # the default: left out like the others
            del data["backchannel_logout_session_required"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Client:
        tuples = ("redirect_uris", "grant_types", "scopes", "post_logout_redirect_uris", "exchange_audiences",
                  "allowed_origins")
        known = {f.name for f in dataclasses.fields(cls)}  # a later release's fields are skipped
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items() if k in known}
        return cls(**values)


@dataclass(frozen=True)
class User:
    sub: str  # stable, opaque, never the username
    username: str
    password_hash: str = dataclasses.field(repr=False)
    email: str | None = None
    roles: tuple[str, ...] = ()
    disabled: bool = False
    created_at: int = 0
    not_before_ms: int = 0  # refresh families and sessions created earlier or in that millisecond
    # are dead; access tokens whose iat (whole seconds) is not after floor(not_before_ms / 1000)
    # are too (fail closed)
    groups: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()  # sorted (name, value) pairs, bounded by tokensrv/claims.py

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "attributes": dict(self.attributes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        # records written before groups and attributes existed have neither: the defaults
        values: dict[str, Any] = {k: tuple(v) if k in ("roles", "groups") else v for k, v in data.items()}
        values["attributes"] = tuple(sorted(data.get("attributes", {}).items()))
        return cls(**values)


@dataclass(frozen=True)
class RefreshFamily:
    """Everything a refresh token stands for. Its tokens rotate; the family stays."""
    family_id: str
    client_id: str
    sub: str
    scope: str
    created_ms: int  # milliseconds: compared with a user's not_before, which is exact
    expires_at: int  # absolute: REFRESH_FAMILY_TTL after creation, whatever the rotations
    sid: str = ""
    auth_time: int = 0
    idle_expires_at: int = 0  # REFRESH_TOKEN_TTL after the last rotation: the key's expiry (0: none)
    jkt: str = ""  # the DPoP key (RFC 7638 thumbprint) every refresh must prove; "" for none
    amr: tuple[str, ...] = ()  # the sign-in's (RFC 8176), for refreshed tokens; () before it was kept
    acr: str = ""  # as AuthCode.acr

    def live_until(self, max_life: int) -> int:
        """When the family dies unless it is used again: the earliest of its idle end, its absolute
        end, and `max_life` (REFRESH_FAMILY_TTL as configured now) after its creation. A family made
        under a longer setting ends by today's: a logout's `ended` marker lasts REFRESH_FAMILY_TTL,
        and no family it must stop may outlive it."""
        return min(self.idle_expires_at or self.expires_at, self.expires_at, self.created_ms // 1000 + max_life)


@dataclass(frozen=True)
class Rotated:
    family: RefreshFamily
    replaced: tuple[tuple[str, int], ...] = ()  # a retry: (jti, exp) of the unused pair it replaced


@dataclass(frozen=True)
class Reused:
    """A rotated token came back: the family is gone; these access tokens must be deny-listed."""
    family: RefreshFamily
    outstanding: tuple[tuple[str, int], ...]  # (jti, exp)


# a refusal that wrote nothing: the family is gone or expired, another client's, or not granted the scope
# (another client's, or bound to another DPoP key than the request's proof)
RotateOutcome = Rotated | Reused | Literal["unknown", "wrong_client", "wrong_key", "invalid_scope"]


@dataclass(frozen=True)
class Revocation:
    """One entry of the revocation feed (and of the deny-list)."""
    kind: Literal["jti", "sid", "sub", "kid", "family"]
    value: str
    until: int  # epoch seconds after which the entry no longer matters
    at: int = 0  # when it was revoked; for `sub`, the not-before time


# ---- browser sign-in: SSO sessions, pending authorization requests, authorization codes ----

@dataclass(frozen=True)
class BrowserSession:
    """An SSO session, found by the SHA-256 of its cookie secret. `sid` is what tokens carry: it
    appears in ID tokens, so it is never the cookie value."""
    sid: str
    sub: str
    auth_time: int
    created_ms: int  # compared with the user's not_before_ms, like a refresh family's
    last_seen: int  # the idle lifetime (SESSION_IDLE_TTL) counts from here
    expires_at: int  # absolute: SESSION_TTL after the login
    previous_sids: tuple[str, ...] = ()  # earlier sessions of this user in this browser: logout ends them too
    amr: tuple[str, ...] = ("pwd",)  # how the user signed in (RFC 8176); sessions of earlier releases: pwd
    address: str = ""  # where and with what the user signed in, for the account page's list
    agent: str = ""  # the User-Agent, cut to MAX_AGENT characters (oauth/browser/sessions.py)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BrowserSession:
        values: dict[str, Any] = {k: tuple(v) if k in ("previous_sids", "amr") else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1)."""
    client_id: str
    redirect_uri: str  # the registered URI the response goes to
    redirect_uri_given: bool  # RFC 6749 §4.1.3: then the token request must repeat it
    scope: str
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None  # S256 only
    max_age: int | None = None
    prompt: tuple[str, ...] = ()
    dpop_jkt: str | None = None  # RFC 9449 §10: the code is redeemed only with a proof by this key
    acr_values: tuple[str, ...] = ()  # OIDC Core §3.1.2.1, in order of preference (voluntary)
    claims: str | None = None  # OIDC Core §5.5, checked, as compact JSON (oauth/claims_request.py)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        values: dict[str, Any] = {k: tuple(v) if k in ("prompt", "acr_values") else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class PendingLogin:
    """An authorization request waiting for the login page, for at most a few minutes."""
    request: AuthorizationRequest
    browser: str  # SHA-256 of the browser's CSRF cookie: the login must finish in that browser
    expires_at: int
    resume: str = ""  # a path of ours to go back to after the login (the device page), no code
    sub: str = ""  # whose password was right: the second step (oauth/browser/second_factor.py) is next
    confirm: str = ""  # step-up: the session's user, whose password (only) is asked again
    session: str = ""  # step-up: the digest of the SSO session it was parked for, which must still stand
    since_ms: int = 0  # when `sub` was fixed: a not-before later than this ends the request

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingLogin:
        return cls(AuthorizationRequest.from_json(data["request"]), data["browser"], data["expires_at"],
                   data.get("resume", ""), data.get("sub", ""), data.get("confirm", ""),
                   data.get("session", ""), data.get("since_ms", 0))


@dataclass(frozen=True)
class PushedRequest:
    """An authorization request pushed by its client (RFC 9126), until its request_uri is used."""
    request: AuthorizationRequest
    expires_at: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PushedRequest:
        return cls(AuthorizationRequest.from_json(data["request"]), data["expires_at"])


@dataclass(frozen=True)
class AuthCode:
    """What an authorization code stands for: the request it answers and the session that approved it."""
    request: AuthorizationRequest
    sub: str
    sid: str
    auth_time: int
    session_created_ms: int
    expires_at: int
    amr: tuple[str, ...] = ()  # the session's (RFC 8176), for the tokens; () from earlier releases
    acr: str = ""  # the acr to tell when it is not the amr's (an essential acr met: step_up.told_acr)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthCode:
        return cls(**{**data, "request": AuthorizationRequest.from_json(data["request"]),
                      "amr": tuple(data.get("amr", ()))})


@dataclass(frozen=True)
class CodeReplay:
    """A code presented again. What the first redemption issued, if it got that far, must die."""
    family_id: str | None = None
    jti: str | None = None
    exp: int = 0
