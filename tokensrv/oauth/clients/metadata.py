"""Clients: registration rules and authentication (RFC 6749 §2.3.1, client_secret_basic/_post;
the private_key_jwt assertion itself is checked in assertion.py)."""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus, urlsplit

from tokensrv.errors import InvalidClient, InvalidRequest
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.keys import check_jwks_uri, public_key_set
from tokensrv.oauth.clients.origins import check_origin
from tokensrv.oauth.params import for_log
from tokensrv.oauth.scopes import is_scope_token
from tokensrv.store import SECRET_METHODS, Client

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 §3.4
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "password", DEVICE_CODE,
               TOKEN_EXCHANGE)
GRANT_TYPE_ALIASES = {"device_code": DEVICE_CODE, "token_exchange": TOKEN_EXCHANGE,
                      "token-exchange": TOKEN_EXCHANGE}  # what `client add --grant-type` also takes
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
# RFC 3986 unreserved characters: a client id then reads the same raw or form-encoded (RFC 6749
# §2.3.1 form-encodes it in HTTP Basic), in URLs and in logs.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
ADMIN_SCOPE = "tokensrv:admin"  # the admin API's scope (tokensrv/server/admin/)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_DECOY_DIGEST = hashlib.sha256(b"no such client").hexdigest()


class RegistrationError(ValueError):
    """A client registration that makes no sense; the message is one line for the CLI."""


class MetadataError(RegistrationError):
    """Client metadata refused. `field` is the RFC 7591 name of the field at fault (a
    ClientMetadata field); the message names fields as `{redirect_uris}`, which spelled() writes
    the way its reader knows them: registration by the field, the CLI by its flag."""

    def __init__(self, field: str, template: str, **values: str) -> None:
        self.field, self.template, self.values = field, template, values
        super().__init__(self.spelled(str))

    def spelled(self, name: Callable[[str], str]) -> str:
        """The message with each field named by `name(field)`; values are put in as they are."""
        return self.template.format_map(_Names(name, self.values))


class _Names(dict[str, str]):
    def __init__(self, name: Callable[[str], str], values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.name = name

    def __missing__(self, field: str) -> str:
        return self.name(field)


class RedirectUriError(MetadataError):
    """A redirect URI we refuse (RFC 7591 §3.2.2 names this one apart: invalid_redirect_uri)."""


MAX_CLIENT_NAME = 100
MAX_DISPLAY_URI = 1024
MAX_REDIRECT_URI = 2048


@dataclass(frozen=True)
class Display:
    """What people see of a client on our pages (RFC 7591 §2): a name, a logo, two links."""
    client_name: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None



def check_display(display: Display) -> Display:
    """The name printable and short; the URIs absolute https (http only for loopback), and the
    logo https only: the login page loads it from the user's browser."""
    name = display.client_name
    if name is not None and (not name.strip() or len(name) > MAX_CLIENT_NAME or not name.isprintable()):
        raise MetadataError("client_name", f"client_name must be 1-{MAX_CLIENT_NAME} printable characters")
    for field in ("logo_uri", "policy_uri", "tos_uri"):
        uri = getattr(display, field)
        if uri is None:
            continue
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 -- raises on a malformed port
        except ValueError:
            raise MetadataError(field, f"malformed {field} {{uri}}", uri=repr(uri)) from None
        loopback_http = parts.scheme == "http" and parts.hostname in _LOOPBACK and field != "logo_uri"
        if (parts.scheme != "https" and not loopback_http) or not parts.hostname or len(uri) > MAX_DISPLAY_URI \
                or parts.username is not None or any(c.isspace() or not c.isprintable() for c in uri):
            rule = "https" if field == "logo_uri" else "https (http only for loopback)"
            raise MetadataError(field, f"{field} {{uri}} must be an absolute {rule} URL without user info",
                                uri=repr(uri))
    return Display(name.strip() if name is not None else None, display.logo_uri, display.policy_uri,
                   display.tos_uri)


def secret_digest(secret: str) -> str:
    # The secret is 256 random bits: a fast digest is enough, no password hashing needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client(client_id: str, metadata: ClientMetadata, *, now: int = 0) -> tuple[Client, str | None]:
    """A checked client record and its secret (None without one): shown once, never stored. The
    one check of client metadata, whoever asks (`tokensrv client add`, RFC 7591 registration):
    what it refuses raises MetadataError naming the field."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise RegistrationError(f"client id {client_id!r} must be 1-128 letters, digits or . _ ~ -")
    auth_method = _auth_method(metadata)
    public = auth_method == "none"
    grant_types = _grant_types(metadata, public)
    _check_exchange(public, grant_types, metadata.exchange_audiences)
    for uri in metadata.redirect_uris:
        check_redirect_uri(uri)
    for uri in metadata.post_logout_redirect_uris:
        check_redirect_uri(uri, "post_logout_redirect_uris")
    if metadata.backchannel_logout_uri is not None:
        check_backchannel_logout_uri(metadata.backchannel_logout_uri)
    for scope in metadata.scope:
        if not is_scope_token(scope):
            raise MetadataError("scope", "malformed scope {scope}", scope=repr(scope))
        if scope == ADMIN_SCOPE:  # else a user's token could carry it: only {admin} grants it
            raise MetadataError("scope", f"{ADMIN_SCOPE} is not a scope to list: mark the client with {{admin}}")
    if metadata.admin:
        _check_admin(auth_method, grant_types)
    if metadata.consent_required and metadata.first_party:
        raise MetadataError("consent_required", "a {first_party} client is never asked about: drop {consent_required}")
    origins = _allowed_origins(metadata.allowed_origins)
    display = check_display(Display(metadata.client_name, metadata.logo_uri, metadata.policy_uri,
                                    metadata.tos_uri))
    secret = secrets.token_urlsafe(32) if auth_method in SECRET_METHODS else None
    record = _record(client_id, metadata, now, auth_method, grant_types, display, secret)
    return dataclasses.replace(record, allowed_origins=origins), secret


def _check_admin(auth_method: str, grant_types: Sequence[str]) -> None:
    """The admin API's callers act for themselves: a confidential client's client_credentials tokens."""
    if auth_method not in (*SECRET_METHODS, "private_key_jwt") or "client_credentials" not in grant_types:
        raise MetadataError("admin", "{admin} is only for a confidential client with {grant_types} "
                            "client_credentials (a secret or private_key_jwt)")


def _allowed_origins(origins: Sequence[str]) -> tuple[str, ...]:
    """Each origin checked and normalised (origins.py), without repeats, in their order."""
    checked = []
    for origin in origins:
        try:
            checked.append(check_origin(origin))
        except ValueError as exc:
            raise MetadataError("allowed_origins", "{allowed_origins} {origin} {reason}",
                                origin=repr(origin[:80]), reason=str(exc)) from None
    return tuple(dict.fromkeys(checked))


def _record(client_id: str, m: ClientMetadata, now: int, auth_method: str, grant_types: Sequence[str],
            display: Display, secret: str | None) -> Client:
    """The stored record of checked metadata: lists without repeats, in their order."""
    return Client(
        client_id=client_id, secret_digest=None if secret is None else secret_digest(secret),
        redirect_uris=tuple(dict.fromkeys(m.redirect_uris)), grant_types=tuple(dict.fromkeys(grant_types)),
        scopes=tuple(dict.fromkeys(m.scope)), audience=m.audience or None, first_party=m.first_party,
        post_logout_redirect_uris=tuple(dict.fromkeys(m.post_logout_redirect_uris)), created_at=now,
        token_endpoint_auth_method=auth_method, jwks=m.jwks, jwks_uri=m.jwks_uri,
        require_pushed_authorization_requests=m.require_pushed_authorization_requests,
        dpop_bound_access_tokens=m.dpop_bound_access_tokens,
        exchange_audiences=tuple(dict.fromkeys(m.exchange_audiences)),
        backchannel_logout_uri=m.backchannel_logout_uri,
        backchannel_logout_session_required=m.backchannel_logout_session_required,
        client_name=display.client_name, logo_uri=display.logo_uri, policy_uri=display.policy_uri,
        tos_uri=display.tos_uri, require_mfa=m.require_mfa, consent_required=m.consent_required, admin=m.admin,
    )


def _grant_types(m: ClientMetadata, public: bool) -> list[str]:
    """The grants asked for (our short names read as their URNs), or the defaults, checked."""
    grant_types = [GRANT_TYPE_ALIASES.get(g, g) for g in m.grant_types] or list(default_grant_types(
        public, bool(m.redirect_uris)))
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise MetadataError("grant_types", "unknown grant type {grant} (known: {known})",
                                grant=repr(grant), known=", ".join(GRANT_TYPES))
    if public and "client_credentials" in grant_types:
        raise MetadataError("grant_types", "a public client cannot use client_credentials: it has no secret")
    if "password" in grant_types and not m.first_party:
        raise MetadataError("grant_types", "the password grant is only for first-party clients (add {first_party})")
    if "authorization_code" in grant_types and not m.redirect_uris:
        raise MetadataError("redirect_uris", "the authorization_code grant needs at least one {redirect_uris}")
    return grant_types


def _check_exchange(public: bool, grant_types: Sequence[str], audiences: Sequence[str]) -> None:
    """RFC 8693: a service exchanging tokens authenticates, and names the audiences it may ask for."""
    if TOKEN_EXCHANGE not in grant_types:
        if audiences:
            raise MetadataError("exchange_audiences", "{exchange_audiences} needs {grant_types} token_exchange")
        return
    if public:
        raise MetadataError("grant_types", "a public client cannot exchange tokens: it has no secret")
    if not audiences:
        raise MetadataError("exchange_audiences", "token exchange needs at least one {exchange_audiences}")
    for audience in audiences:
        if not audience or len(audience) > 256 or not audience.isprintable() or " " in audience:
            raise MetadataError("exchange_audiences", "malformed exchange audience {audience}",
                                audience=repr(audience))


def _auth_method(m: ClientMetadata) -> str:
    """The one token_endpoint_auth_method (RFC 7591 §2) of a new client, and its keys checked."""
    method = m.token_endpoint_auth_method or ("none" if m.public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise MetadataError("token_endpoint_auth_method", "unknown auth method {method} (known: {known})",
                            method=repr(method), known=", ".join(AUTH_METHODS))
    if m.public and method != "none":
        raise MetadataError("token_endpoint_auth_method", "a public client has no credentials: {public} goes "
                            "with no {token_endpoint_auth_method} {method}", method=method)
    if method != "private_key_jwt":
        if m.jwks is not None or m.jwks_uri is not None:
            raise MetadataError("jwks" if m.jwks is not None else "jwks_uri",
                                "a JWKS or jwks_uri is only for {token_endpoint_auth_method} private_key_jwt")
        return method
    if (m.jwks is None) == (m.jwks_uri is None):
        raise MetadataError("jwks", "private_key_jwt needs exactly one of {jwks} and {jwks_uri}")
    _check_client_keys(m.jwks, m.jwks_uri)
    return method


def _check_client_keys(jwks: dict[str, Any] | None, jwks_uri: str | None) -> None:
    field = "jwks" if jwks is not None else "jwks_uri"
    try:
        if jwks is not None:
            public_key_set(jwks)
        else:
            check_jwks_uri(jwks_uri or "")
    except ValueError as exc:
        raise MetadataError(field, "{reason}", reason=str(exc)) from None


def default_grant_types(public: bool, has_redirect_uris: bool) -> tuple[str, ...]:
    """With redirect URIs: the code flow (and refresh); a confidential client also acts for itself."""
    browser = ("authorization_code", "refresh_token") if has_redirect_uris or public else ()
    return browser if public else (*browser, "client_credentials")


def check_redirect_uri(uri: str, field: str = "redirect_uris") -> None:
    """RFC 6749 §3.1.2: absolute, no fragment; http only for loopback (RFC 8252 §7.3)."""
    def refused(template: str) -> RedirectUriError:
        return RedirectUriError(field, template, uri=repr(uri), start=repr(uri[:40]))
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        raise refused("malformed redirect URI {uri}") from None
    if not parts.scheme or "#" in uri or any(c.isspace() or not c.isprintable() for c in uri):
        raise refused("malformed redirect URI {uri}: it must be absolute, without a fragment")
    if len(uri) > MAX_REDIRECT_URI:
        raise refused(f"redirect URI {{start}}... is over {MAX_REDIRECT_URI} characters")
    if "*" in parts.netloc:  # matching is exact (RFC 9700 §4.1.3): a pattern would match too much
        raise refused("redirect URI {uri} has a wildcard: register each URI exactly")
    if "@" in parts.netloc:  # user info, in any scheme: a credential, or a host that is not what it reads as
        raise refused("malformed redirect URI {uri}: it must have no user info")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise refused("malformed redirect URI {uri}: it needs a host")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise refused("redirect URI {uri} must use https (http only for loopback)")
    elif parts.scheme in ("javascript", "data", "file", "vbscript", "blob", "about", "filesystem"):
        raise refused("redirect URI {uri} has a forbidden scheme")


MAX_URI = 2048


def check_backchannel_logout_uri(uri: str) -> str:
    """OIDC Back-Channel Logout 1.0 §2.2: an absolute https URL (http only for loopback, as for
    redirect URIs: RFC 8252 §7.3), no fragment, no user info (the server POSTs to it: credentials
    in it would be sent to whoever the URL names, and logged as a URL). The one check every way of
    registering a client uses; raises MetadataError with a one-line reason."""
    def refused(template: str) -> MetadataError:  # named as the field, by the CLI too (as before)
        return MetadataError("backchannel_logout_uri", template, uri=repr(uri[:200]))
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        raise refused("malformed backchannel_logout_uri {uri}") from None
    if (len(uri) > MAX_URI or parts.scheme not in ("https", "http") or not parts.hostname or "#" in uri
            or not uri.isprintable() or any(c.isspace() for c in uri)):
        raise refused("backchannel_logout_uri {uri} must be an absolute https URL without a fragment")
    if parts.username is not None or parts.password is not None:
        raise refused("backchannel_logout_uri {uri} must not carry user info")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise refused("backchannel_logout_uri {uri} must use https (http only for loopback)")
    return uri


def is_client_id(value: str) -> bool:
    """Could this name a client? (Anything else is refused before it is looked up or counted.)"""
    return _CLIENT_ID.fullmatch(value) is not None


def credentials(form: Mapping[str, str], authorization: str | None) -> tuple[str | None, str | None]:
    """(client_id, client_secret) from exactly one authentication method."""
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClient("unsupported authorization scheme")
        if "client_secret" in form:
            raise InvalidRequest("two client authentication methods",
                                 description="use exactly one client authentication method")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClient("malformed basic credentials") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise InvalidClient("malformed basic credentials")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)  # form-encoded (§2.3.1)
        if form.get("client_id", client_id) != client_id:
            raise InvalidClient("client_id differs from the authenticated client")
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


@dataclass(frozen=True)
class Presented:
    """What a request offers to authenticate its client: one method only (RFC 6749 §2.3)."""
    client_id: str | None
    secret: str | None = None
    assertion: str | None = None  # RFC 7523 §2.2: private_key_jwt


def presented(form: Mapping[str, str], authorization: str | None) -> Presented:
    """The client credentials of a request; two methods at once are invalid_request."""
    assertion, assertion_type = form.get("client_assertion"), form.get("client_assertion_type")
    if assertion is None and assertion_type is None:
        return Presented(*credentials(form, authorization))
    if authorization is not None or "client_secret" in form:
        raise InvalidRequest("two client authentication methods",
                             description="use exactly one client authentication method")
    if assertion is None or assertion_type is None:
        raise InvalidRequest("client_assertion without client_assertion_type or the reverse",
                             description="client_assertion and client_assertion_type go together")
    if assertion_type != ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type {for_log(assertion_type)}")
    return Presented(form.get("client_id"), assertion=assertion)


async def check(store: ClientSource, client_id: str, secret: str | None, *, allow_public: bool = True,
                now: Callable[[], int] = lambda: 0) -> Client:
    """The client `client_id`, if `secret` is its secret (None: it must be a public client); a
    previous secret while its overlap lasts by `now` (default: never)."""
    client = await store.get_client(client_id)
    if client is None:
        if secret is not None:
            hmac.compare_digest(secret_digest(secret), _DECOY_DIGEST)  # same cost as a wrong secret
        raise InvalidClient(f"unknown client {for_log(client_id)}")
    if client.is_public:
        if secret is not None:
            raise InvalidClient("public client presented a secret")
        if not allow_public:
            raise InvalidClient("public clients cannot use this endpoint")
        return client
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise InvalidClient(f"client {client_id!r} authenticates with {client.token_endpoint_auth_method}")
    if secret is None or not secret_matches(client, secret_digest(secret), now):
        raise InvalidClient(f"wrong secret for client {client_id!r}")
    return client


def secret_matches(client: Client, digest: str, now: Callable[[], int]) -> bool:
    """The digest of the current secret, or of the previous one until its overlap ends
    (`tokensrv client rotate-secret`). Both compared in constant time, both always once a client
    has a previous secret; a client without one (nearly all) costs the one compare it always did."""
    current = hmac.compare_digest(digest, client.secret_digest or "")
    if client.previous_secret_digest is None:
        return current
    previous = hmac.compare_digest(digest, client.previous_secret_digest)
    return current or (previous and now() < client.previous_secret_expires_at)


class ClientSource(Protocol):
    async def get_client(self, client_id: str) -> Client | None: ...
