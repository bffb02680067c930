"""Settings: every TOKENSRV_* variable is parsed and checked here, once, at start."""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensrv.verify import store_url
from tokensrv.verify.claims import DEFAULT_MAX_TOKEN_LIFETIME as MAX_TOKEN_TTL

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
EMBEDDED_DIR = Path(".tokensrv")
EMBEDDED_SOCKET = EMBEDDED_DIR / "valkey.sock"
SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
MAX_DURABLE_REPLICAS = 16  # a typo guard: more replicas than this would make every revocation fail


class ConfigError(Exception):
    """A bad setting: the message names it and is safe to print as one line."""


@dataclass(frozen=True)
class Settings:
    issuer: str = ""  # derived from host and port when empty
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str = ""  # see default_redis_url()
    keys_dir: Path = Path("keys")
    access_token_ttl: int = 900
    refresh_token_ttl: int = 7 * 86400  # idle
    refresh_family_ttl: int = 30 * 86400  # absolute
    refresh_reuse_grace: int = 0
    id_token_ttl: int = 900
    auth_code_ttl: int = 60
    key_rotation_period: int = 7 * 86400
    key_algorithm: str = "RS256"
    jwks_max_age: int = 600
    session_ttl: int = 86400  # absolute
    session_idle_ttl: int = 8 * 3600
    workers: int = 1
    log_format: str = "json"
    log_level: str = "info"  # debug adds a line for each successful JWKS, discovery and probe request
    display_name: str = "tokensrv"
    login_max_failures: int = 10  # per username and per client address ...
    login_failure_window: int = 900  # ... within this many seconds
    client_auth_max_failures: int = 20  # failed client authentications per client_id and address ...
    client_auth_failure_window: int = 600  # ... within this many seconds (a fixed window), then 429
    argon2_threads: int = 0  # argon2 worker processes per server process; 0: the cores / workers
    argon2_queue: int = 0  # password checks that may wait beyond those hashing; 0: 8 per argon2 process
    key_check_interval: float = 2.0  # how often keys/ is re-read and the schedule consulted
    shutdown_timeout: float = 10.0  # on SIGTERM, how long in-flight requests may take to finish
    header_timeout: float = 10.0  # seconds a client may take to send a request's line and headers
    body_timeout: float = 10.0  # seconds a client may take to send a request's body, once its head is in
    token_rate_per_client: float = 0.0  # token requests per second per client; 0: no limit
    token_rate_per_address: float = 0.0  # token requests per second per client address; 0: no limit
    token_rate_burst: int = 20  # how many may come at once before the rate applies
    trusted_proxies: tuple[IPNetwork, ...] = ()  # X-Forwarded-For is believed only from these
    durable_replicas: int = 0  # replicas that must have a revocation before it is acknowledged (WAIT)
    require_par: bool = False  # every authorization request must be pushed first (RFC 9126 §5)
    par_ttl: int = 60  # seconds a pushed request's request_uri lives (RFC 9126 §2.2 expires_in)
    dpop_nonce: str = "off"  # "on": DPoP proofs at the token endpoint must carry our nonce (RFC 9449 §8)
    dpop_iat_window: int = 60  # seconds a DPoP proof's iat may be from our clock, either way
    device_code_ttl: int = 600  # RFC 8628: how long a device code and its user code live
    device_poll_interval: int = 5  # RFC 8628 §3.2 `interval`: seconds between polls (slow_down adds 5)
    device_user_code_max_failures: int = 1000  # wrong user codes from all addresses per login window
    # OIDC Back-Channel Logout: jobs the shared delivery queue holds at most (more are refused and
    # counted), attempts per logout token, and the first retry's delay (doubled at each retry)
    backchannel_queue_max: int = 10_000
    backchannel_max_attempts: int = 5
    backchannel_retry_delay: float = 2.0
    registration: str = "off"  # "on": dynamic client registration (RFC 7591/7592) at /oauth2/register
    registration_scopes: str = "openid profile email"  # the most a registered client may be allowed

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


# name -> (parser, field); the env var is TOKENSRV_<NAME>
_INT_FIELDS = (
    "port", "access_token_ttl", "refresh_token_ttl", "refresh_family_ttl", "refresh_reuse_grace",
    "id_token_ttl", "auth_code_ttl", "key_rotation_period", "jwks_max_age", "session_ttl",
    "session_idle_ttl", "workers", "login_max_failures", "login_failure_window", "argon2_threads",
    "argon2_queue", "token_rate_burst", "client_auth_max_failures", "client_auth_failure_window",
    "durable_replicas", "par_ttl", "dpop_iat_window", "device_code_ttl", "device_poll_interval",
    "device_user_code_max_failures", "backchannel_queue_max", "backchannel_max_attempts",
)
_FLOAT_FIELDS = ("key_check_interval", "shutdown_timeout", "backchannel_retry_delay", "header_timeout",
                 "body_timeout")
_RATE_FIELDS = ("token_rate_per_client", "token_rate_per_address")  # 0 allowed: off
_BOOL_FIELDS = ("require_par",)
_STR_FIELDS = ("issuer", "host", "redis_url", "log_format", "log_level", "display_name", "key_algorithm",
               "dpop_nonce", "registration", "registration_scopes")
LOG_LEVELS = ("debug", "info", "warning", "error")
_POSITIVE = {
    "access_token_ttl", "refresh_token_ttl", "refresh_family_ttl", "id_token_ttl", "auth_code_ttl",
    "key_rotation_period", "session_ttl", "session_idle_ttl", "workers", "login_max_failures",
    "login_failure_window", "token_rate_burst", "client_auth_max_failures", "client_auth_failure_window",
    "par_ttl", "dpop_iat_window", "device_code_ttl", "device_poll_interval", "device_user_code_max_failures",
    "backchannel_queue_max", "backchannel_max_attempts",
}


def env_name(field: str) -> str:
    return "TOKENSRV_" + field.upper()


def _parse_int(field: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{env_name(field)} must be a whole number, got {raw!r}") from None
    if value < 0 or (value == 0 and field in _POSITIVE):
        kind = "a positive" if field in _POSITIVE else "a non-negative"
        raise ConfigError(f"{env_name(field)} must be {kind} whole number, got {raw!r}")
    return value


def _parse_float(field: str, raw: str, zero_allowed: bool = False) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{env_name(field)} must be a number, got {raw!r}") from None
    if not (value >= 0 if zero_allowed else value > 0) or value == float("inf"):
        kind = "a non-negative" if zero_allowed else "a positive"
        raise ConfigError(f"{env_name(field)} must be {kind} number, got {raw!r}")
    return value


def _parse_bool(field: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{env_name(field)} must be true or false, got {raw!r}")


def _parse_networks(raw: str) -> tuple[IPNetwork, ...]:
    """TOKENSRV_TRUSTED_PROXIES: addresses or CIDR networks, separated by commas."""
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"TOKENSRV_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return tuple(networks)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from TOKENSRV_* variables, then explicit overrides (CLI flags), then check."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for field in _INT_FIELDS + _FLOAT_FIELDS + _RATE_FIELDS + _BOOL_FIELDS + _STR_FIELDS + ("keys_dir", "trusted_proxies"):
        raw = env.get(env_name(field))
        if raw is not None and raw != "":
            values[field] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    for field in _INT_FIELDS:
        if field in values and not isinstance(values[field], int):
            values[field] = _parse_int(field, str(values[field]))
        elif field in values and values[field] < 0:
            raise ConfigError(f"{env_name(field)} must not be negative, got {values[field]}")
    for field in _FLOAT_FIELDS + _RATE_FIELDS:
        if field in values and not isinstance(values[field], float):
            values[field] = _parse_float(field, str(values[field]), zero_allowed=field in _RATE_FIELDS)
    for field in _BOOL_FIELDS:
        if field in values and not isinstance(values[field], bool):
            values[field] = _parse_bool(field, str(values[field]))
    if "keys_dir" in values:
        values["keys_dir"] = Path(values["keys_dir"])
    if isinstance(values.get("trusted_proxies"), str):
        values["trusted_proxies"] = _parse_networks(values["trusted_proxies"])
    settings = Settings(**_defaults_give_way(values))
    return _checked(settings)


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
    if not (0 < s.port < 65536):
        raise ConfigError(f"TOKENSRV_PORT must be between 1 and 65535, got {s.port}")
    issuer = s.issuer or f"http://{_host_for_url(s.host)}:{s.port}"
    check_issuer(issuer)
    for name in ("access_token_ttl", "id_token_ttl"):  # tokensrv.verify refuses longer-lived tokens
        if getattr(s, name) > MAX_TOKEN_TTL:
            raise ConfigError(f"{env_name(name)} must be at most {MAX_TOKEN_TTL} seconds, got {getattr(s, name)}")
    if s.jwks_max_age >= s.key_rotation_period:
        raise ConfigError(
            "TOKENSRV_KEY_ROTATION_PERIOD must be longer than TOKENSRV_JWKS_MAX_AGE "
            f"({s.key_rotation_period} <= {s.jwks_max_age})")
    if s.refresh_token_ttl > s.refresh_family_ttl:
        raise ConfigError("TOKENSRV_REFRESH_TOKEN_TTL must not exceed TOKENSRV_REFRESH_FAMILY_TTL")
    if s.session_idle_ttl > s.session_ttl:
        raise ConfigError("TOKENSRV_SESSION_IDLE_TTL must not exceed TOKENSRV_SESSION_TTL")
    if s.log_format not in ("json", "text"):
        raise ConfigError(f"TOKENSRV_LOG_FORMAT must be 'json' or 'text', got {s.log_format!r}")
    s = dataclasses.replace(s, log_level=s.log_level.lower())
    if s.log_level not in LOG_LEVELS:
        raise ConfigError(f"TOKENSRV_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    if s.key_algorithm not in SIGNING_ALGORITHMS:
        raise ConfigError(
            f"TOKENSRV_KEY_ALGORITHM must be one of {', '.join(SIGNING_ALGORITHMS)}, "
            f"got {s.key_algorithm!r}")
    s = dataclasses.replace(s, dpop_nonce=s.dpop_nonce.lower())
    if s.dpop_nonce not in ("on", "off"):
        raise ConfigError(f"TOKENSRV_DPOP_NONCE must be 'on' or 'off', got {s.dpop_nonce!r}")
    s = dataclasses.replace(s, registration=s.registration.lower())
    if s.registration not in ("on", "off"):
        raise ConfigError(f"TOKENSRV_REGISTRATION must be 'on' or 'off', got {s.registration!r}")
    for scope in s.registration_scope_list:
        if not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", scope):  # RFC 6749 §3.3 scope-token
            raise ConfigError(f"TOKENSRV_REGISTRATION_SCOPES: malformed scope {scope!r}")
    redis_url = s.redis_url or default_redis_url()
    check_redis_url(redis_url)
    if s.durable_replicas > MAX_DURABLE_REPLICAS:
        raise ConfigError(f"TOKENSRV_DURABLE_REPLICAS must be at most {MAX_DURABLE_REPLICAS}, "
                          f"got {s.durable_replicas}")
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
