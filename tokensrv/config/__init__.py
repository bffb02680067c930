"""Settings: every TOKENSRV_<NAME> variable is declared once in `Settings` (type, default, reader with
its bounds, its documentation: the readers are in declare.py), parsed and checked here at start.
`make docs-reference` writes the docs' configuration reference from the declarations;
tests/unit/test_config_docs.py checks it."""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensrv.claims import ClaimRules
from tokensrv.config.declare import (
    ConfigError,
    IPNetwork,
    Setting,
    choice,
    claims_file,
    declare,
    env_name,
    flag,
    networks,
    number,
    scope_tokens,
    text,
    whole,
)
from tokensrv.verify import store_url
from tokensrv.verify.claims import DEFAULT_MAX_TOKEN_LIFETIME as MAX_TOKEN_TTL

__all__ = ["SETTINGS", "ConfigError", "IPNetwork", "Settings", "env_name", "load_settings", "markdown_table",
           "redact_url"]

EMBEDDED_DIR = Path(".tokensrv")
EMBEDDED_SOCKET = EMBEDDED_DIR / "valkey.sock"
SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_DURABLE_REPLICAS = 16  # a typo guard: more replicas than this would make every write fail


@dataclass(frozen=True)
class Settings:
    """Every setting, in the configuration reference's order."""
    issuer: str = text(
        "", "the `iss` of every token; an absolute http(s) URL without query or fragment",
        default_doc="`http://HOST:PORT`")  # derived from host and port when empty
    host: str = text("127.0.0.1", "the address to listen on")
    port: int = whole(8080, "the port to listen on", maximum=65535)
    admin_port: int = whole(0, "the admin API's port ([Admin API](../guides/admin-api.md)); 0: no admin "
                            "listener", minimum=0, maximum=65535, default_doc="`0` (off)")
    admin_host: str = text("127.0.0.1", "the address the admin API listens on (keep it private)")
    redis_url: str = text(
        "", "one server (`redis://`, `rediss://`, `unix://`), a Cluster (`redis+cluster://`) or Sentinel "
        "(`redis+sentinel://`): see [Store URLs](../operations/store.md#store-urls)",
        default_doc="the embedded store of `make run` in this folder if it runs, else "
        "`redis://127.0.0.1:6379/0`")  # see default_redis_url()
    durable_replicas: int = whole(
        0, "replicas that must have every write (`WAIT`) before it is acknowledged "
        "([Sentinel](../operations/store.md#sentinel))", minimum=0, maximum=MAX_DURABLE_REPLICAS)
    keys_dir: Path = declare(  # noqa: RUF009 (a frozen Path)
        Path("keys"), lambda env, raw: Path(str(raw)), "the signing-key folder, shared by every instance", None)
    access_token_ttl: int = whole(
        900, f"access-token lifetime, seconds; at most `{MAX_TOKEN_TTL}` (`tokensrv.verify` refuses "
        "longer-lived tokens)", maximum=MAX_TOKEN_TTL, unit=" seconds")
    refresh_token_ttl: int = whole(
        7 * 86400, "a refresh family dies after this long unused",
        default_doc="`604800` (7 d), at most `REFRESH_FAMILY_TTL` when only that is set")  # idle
    refresh_family_ttl: int = whole(
        30 * 86400, "… and this long after the login, whatever its use",
        default_doc="`2592000` (30 d), at least `REFRESH_TOKEN_TTL` when only that is set")  # absolute
    refresh_reuse_grace: int = whole(
        60, "seconds after a rotation in which its predecessor may be presented again while the new token "
        "is unused (a retry after a lost answer); `0`: never. See [Refresh tokens]"
        "(../guides/tokens.md#refresh-tokens-rotation-and-reuse-detection)", minimum=0)
    browser_refresh_idle: int = whole(86400, "idle lifetime of a browser app's refresh family not bound by DPoP, "
                                      "if shorter ([Browser apps](../guides/browser-apps.md#refresh-tokens))")
    id_token_ttl: int = whole(
        900, f"ID-token lifetime; at most `{MAX_TOKEN_TTL}`", maximum=MAX_TOKEN_TTL, unit=" seconds")
    auth_code_ttl: int = whole(60, "authorization-code lifetime")
    key_rotation_period: int = whole(
        7 * 86400, "how long a key signs before the next one takes over",
        default_doc="`604800` (7 d), at least twice `JWKS_MAX_AGE` when only that is set")
    key_algorithm: str = choice("RS256", SIGNING_ALGORITHMS, "`RS256`, `ES256` or `EdDSA` for new keys")
    jwks_max_age: int = whole(
        600, "`Cache-Control: max-age` of the JWKS; must be shorter than the rotation period",
        minimum=0, default_doc="`600`, at most half `KEY_ROTATION_PERIOD` when only that is set")
    session_ttl: int = whole(
        86400, "SSO session absolute lifetime",
        default_doc="`86400` (24 h), at least `SESSION_IDLE_TTL` when only that is set")
    session_idle_ttl: int = whole(
        8 * 3600, "SSO session idle lifetime; must not exceed the absolute one (`TOKENSRV_SESSION_TTL`)",
        default_doc="`28800` (8 h), at most `SESSION_TTL` when only that is set")
    login_max_failures: int = whole(
        10, "failed logins per username and per client address within `TOKENSRV_LOGIN_FAILURE_WINDOW`, then 429")
    login_failure_window: int = whole(900, "seconds of the failed-login window")
    recent_auth: int = whole(600, "seconds after a sign-in within which the account page's sensitive changes (ending "
                             "all other sessions) need no password again; `0`: always asked", minimum=0)
    client_auth_max_failures: int = whole(
        20, "failed client authentications allowed per `client_id` and client address within a fixed "
        "window of `TOKENSRV_CLIENT_AUTH_FAILURE_WINDOW`, then 429 `slow_down` until it ends (see "
        "[Client secret guessing](../operations/deploying.md#client-secret-guessing))")
    client_auth_failure_window: int = whole(600, "seconds of the failed client authentication window")
    require_par: bool = flag(
        False, "`true`: every authorization request must be pushed first (RFC 9126); advertised as "
        "`require_pushed_authorization_requests`")
    par_ttl: int = whole(60, "seconds a pushed request's `request_uri` lives (its `expires_in`)")
    workers: int = whole(1, "worker processes")
    log_format: str = choice("json", ("json", "text"), "`json` or `text`")
    log_level: str = choice(
        "info", LOG_LEVELS, "`debug`, `info`, `warning` or `error`; `debug` adds a line for each successful "
        "JWKS, discovery and probe request", fold_case=True)
    display_name: str = text("tokensrv", "the name people see on the login page")
    mfa: str = choice("optional", ("off", "optional", "required"), "TOTP second factor: `off`, `optional` (users "
                      "may enrol at `/account`) or `required` (enrolment right after the password); see [Two-step "
                      "verification](../guides/two-step.md)", fold_case=True)
    token_rate_per_client: float = number(
        0.0, "token-endpoint requests per second per client (a token bucket in Valkey, one round trip per "
        "request); past it, 429 `slow_down` with `Retry-After`", zero_allowed=True, default_doc="`0` (off)")
    token_rate_per_address: float = number(
        0.0, "token-endpoint requests per second per client address, like `TOKENSRV_TOKEN_RATE_PER_CLIENT`",
        zero_allowed=True, default_doc="`0` (off)")
    token_rate_burst: int = whole(20, "requests a bucket lets through at once")
    trusted_proxies: tuple[IPNetwork, ...] = networks(
        "addresses or networks (comma-separated) whose `X-Forwarded-For` is believed")
    key_check_interval: float = number(2.0, "seconds between re-reads of `keys/` and checks of the rotation schedule")
    shutdown_timeout: float = number(10.0, "on SIGTERM, seconds in-flight requests get to finish")
    header_timeout: float = number(
        10.0, "seconds a client may take to send a request line and headers, counted from connecting (or "
        "from the first byte of a later request on the connection); past it the connection is closed. An "
        "idle keep-alive connection between requests is closed after aiohttp's `keepalive_timeout` (3630 s: "
        "longer than a reverse proxy keeps an idle connection open, so that it never sends a request on one "
        "just closed)")
    body_timeout: float = number(
        10.0, "seconds a request body may take after the headers; past it `408 invalid_request`, connection closed")
    argon2_threads: int = whole(
        0, "argon2 worker processes per server process (the name predates the processes)", minimum=0,
        default_doc="cores / workers")  # 0: the cores / workers
    argon2_queue: int = whole(  # 0: 8 per argon2 process
        0, "password checks that may wait for an argon2 process; past it a login is `503 temporarily_unavailable`",
        minimum=0, default_doc="8 \N{MULTIPLICATION SIGN} argon2 processes")
    device_code_ttl: int = whole(600, "lifetime of a device code and its user code (RFC 8628)")
    device_poll_interval: int = whole(5, "seconds a device must wait between polls; each `slow_down` adds 5 for it")
    device_user_code_max_failures: int = whole(
        1000, "wrong user codes accepted from all addresses together within `TOKENSRV_LOGIN_FAILURE_WINDOW`, "
        "then the device page answers 429 to everyone until the window ends (per address the login limit "
        "applies)")
    dpop_nonce: str = choice(
        "off", ("on", "off"), "`on`: DPoP proofs at the token and PAR endpoints must carry the server's nonce "
        "(see [DPoP](../guides/dpop.md))", fold_case=True)
    dpop_iat_window: int = whole(60, "seconds a DPoP proof's `iat` may be before or after the server's clock")
    backchannel_queue_max: int = whole(
        10_000, "back-channel logout deliveries the shared queue holds (waiting or to retry); past it a new "
        "one is refused and counted (see [Back-channel logout](../guides/sso.md#back-channel-logout))")
    backchannel_max_attempts: int = whole(5, "attempts per logout token before it is given up")
    backchannel_retry_delay: float = number(
        2.0, "seconds before the first retry; each further retry waits twice as long (at most 300)")
    registration: str = choice(
        "off", ("on", "off"), "`on`: dynamic client registration (RFC 7591/7592) at `/oauth2/register`, "
        "advertised as `registration_endpoint`; off, the path is a 404 like any unknown one (see [Dynamic "
        "client registration](../guides/clients.md#dynamic-client-registration-rfc-7591-and-7592))", fold_case=True)
    registration_scopes: str = text(
        "openid profile email", "the scopes a registered client may be given (space-separated); what it asks "
        "beyond them is dropped", check=scope_tokens)
    claims: ClaimRules = claims_file(  # noqa: RUF009 (frozen rules)
        "a JSON file of custom scopes and per-client access-token claims, checked at start (see [Claims]"
        "(../guides/claims.md))")

    @property
    def max_token_ttl(self) -> int:
        """The longest a signed token lives: a retired key stays published this long (+ max-age)."""
        return max(self.access_token_ttl, self.id_token_ttl)

    @property
    def key_publish_delay(self) -> int:
        """How long a new key is published before it signs: every cache has seen it by then,
        including a JWKS fetched from an instance that had not yet re-read keys/."""
        return self.jwks_max_age + math.ceil(self.key_check_interval)

    @property
    def registration_enabled(self) -> bool:
        return self.registration == "on"

    @property
    def registration_scope_list(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.registration_scopes.split()))

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(Settings)}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from TOKENSRV_* variables, then explicit overrides (CLI flags), then check."""
    env = os.environ if env is None else env
    chosen: dict[str, object] = {name: env[env_name(name)] for name in SETTINGS if env.get(env_name(name))}
    chosen.update({name: value for name, value in overrides.items() if value is not None})
    values: dict[str, Any] = {}
    for name, raw in chosen.items():
        if name not in SETTINGS:
            raise TypeError(f"load_settings() got an unknown setting {name!r}")
        values[name] = SETTINGS[name].read(env_name(name), raw)
    return _checked(Settings(**_defaults_give_way(values)))


def markdown_table() -> str:
    """The configuration reference's table, one row per declaration (`make docs-reference` writes it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{env_name(name)}` | {s.default_doc} | {s.doc} |" for name, s in SETTINGS.items()]
    return "\n".join(rows) + "\n"


# settings checked against each other: (at most, at least); equal is fine
_BOUNDED_PAIRS = (("refresh_token_ttl", "refresh_family_ttl"), ("session_idle_ttl", "session_ttl"))


def _defaults_give_way(chosen: dict[str, Any]) -> dict[str, Any]:
    """Where a setting is checked against another, a default never contradicts the one the user
    chose: it moves as far as that needs (an idle lifetime down to the absolute one, and so on).
    Only two chosen settings that contradict each other are refused, by _checked."""
    values = dict(chosen)
    for shorter, longer in _BOUNDED_PAIRS:
        if longer in values and shorter not in values:
            values[shorter] = min(_default(shorter), values[longer])
        elif shorter in values and longer not in values:
            values[longer] = max(_default(longer), values[shorter])
    # the JWKS max-age stays within half the rotation period, so a next key (created at each
    # promotion) has been published for the max-age before its turn comes
    if "key_rotation_period" in values and "jwks_max_age" not in values:
        values["jwks_max_age"] = min(_default("jwks_max_age"), values["key_rotation_period"] // 2)
    elif "jwks_max_age" in values and "key_rotation_period" not in values:
        values["key_rotation_period"] = max(_default("key_rotation_period"), 2 * values["jwks_max_age"])
    return values


def _default(field: str) -> Any:
    return Settings.__dataclass_fields__[field].default


def _checked(s: Settings) -> Settings:
    """The checks that need more than one setting (each setting's own bounds are in its reader)."""
    issuer = s.issuer or f"http://{_host_for_url(s.host)}:{s.port}"
    check_issuer(issuer)
    if s.jwks_max_age >= s.key_rotation_period:
        raise ConfigError(
            "TOKENSRV_KEY_ROTATION_PERIOD must be longer than TOKENSRV_JWKS_MAX_AGE "
            f"({s.key_rotation_period} <= {s.jwks_max_age})")
    for shorter, longer in _BOUNDED_PAIRS:
        if getattr(s, shorter) > getattr(s, longer):
            raise ConfigError(f"{env_name(shorter)} must not exceed {env_name(longer)}")
    redis_url = s.redis_url or default_redis_url()
    check_redis_url(redis_url)
    return dataclasses.replace(s, issuer=issuer.rstrip("/"), redis_url=redis_url)


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def check_issuer(issuer: str) -> None:
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"TOKENSRV_ISSUER must be an absolute http(s) URL, got {issuer!r}")
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        raise ConfigError(f"TOKENSRV_ISSUER must have no query or fragment, got {issuer!r}")


def check_redis_url(url: str) -> None:
    """One server, a Cluster or a Sentinel URL (tokensrv/verify/store_url.py reads them all)."""
    try:
        store_url.parse(url)
    except ValueError as exc:
        raise ConfigError(f"TOKENSRV_REDIS_URL: {exc} (got {redact_url(url)!r})") from None


def default_redis_url() -> str:
    """The embedded store of `make run` when it is up in this directory, else a local Redis."""
    if EMBEDDED_SOCKET.exists():
        return f"unix://{EMBEDDED_SOCKET.resolve()}"
    return "redis://127.0.0.1:6379/0"


def redact_url(url: str) -> str:
    """The URL without its passwords, for messages and logs."""
    return store_url.redact(url)

