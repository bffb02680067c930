"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), off unless
TOKENSRV_REGISTRATION=on.

Registering needs an initial access token (`tokensrv client token`: an operator decides who may
register; open registration is not offered). The metadata goes through the same checks as
`tokensrv client add` (clients.new_client), with what only an operator may decide left out: a
registered client is never first-party (so never gets the password grant), never exchanges tokens,
names no audience, and its scopes are narrowed to TOKENSRV_REGISTRATION_SCOPES.

The answer carries a registration access token, bound to that one client (its digest is in the
client's record): with it the client reads (GET), replaces (PUT) and deletes (DELETE) its
registration at registration_client_uri. Every read and update answer carries the token to use
next (RFC 7592 §3 requires one in the answer, and only a digest is kept, so it cannot be the one
presented): each rotates it, and the one presented stops working. Nothing here knows HTTP:
server/routes.py hands in the Authorization header and the body.
"""
from __future__ import annotations

import dataclasses
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tokensrv.errors import InvalidClientMetadata, InvalidRedirectUri, InvalidToken
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.fields import ClientMetadata, fields_from
from tokensrv.oauth.clients.metadata import (
    TOKEN_EXCHANGE,
    MetadataError,
    RedirectUriError,
    RegistrationError,
    new_client,
    secret_digest,
)
from tokensrv.observability.logs import audit
from tokensrv.store import SECRET_METHODS, Client
from tokensrv.verify.json_limits import JSONRejected, parse_object

REGISTRATION_PATH = "/oauth2/register"
DEFAULT_INITIAL_TOKEN_TTL = 3600
MAX_INITIAL_TOKEN_TTL = 30 * 86400
MAX_INITIAL_TOKEN_USES = 1000
MAX_METADATA_BYTES = 64 * 1024  # as the server's body limit (app.MAX_BODY)
MAX_DESCRIPTION = 200  # an error echoes the offending value: a hostile one is cut short
_DECOY_DIGEST = secret_digest("no such registration")


# ---- initial access tokens (minted by `tokensrv client token`) ----

async def mint_initial_token(p: Provider, ttl: int = DEFAULT_INITIAL_TOKEN_TTL, uses: int = 1) -> dict[str, Any]:
    """A new initial access token, shown once: only its digest is stored, for `ttl` seconds."""
    if not 1 <= ttl <= MAX_INITIAL_TOKEN_TTL:
        raise RegistrationError(f"--ttl must be between 1 second and {MAX_INITIAL_TOKEN_TTL // 86400} days")
    if not 1 <= uses <= MAX_INITIAL_TOKEN_USES:
        raise RegistrationError(f"--uses must be between 1 and {MAX_INITIAL_TOKEN_USES}")
    token = secrets.token_urlsafe(32)
    await p.store.clients.put_initial_token(secret_digest(token), uses, ttl)
    return {"initial_access_token": token, "expires_at": p.now() + ttl, "uses": uses}


def bearer_token(authorization: str | None) -> str:
    """RFC 6750 §2.1: the token of `Authorization: Bearer <token>`."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken("no bearer token", description="a bearer token is required")
    return token


# ---- RFC 7591 §3: registration ----

async def register(p: Provider, authorization: str | None, body: Body) -> dict[str, Any]:
    """A new client from the metadata in `body`; the 201 answer's body (§3.2.1)."""
    digest = secret_digest(bearer_token(authorization))
    if not await p.store.clients.initial_token_uses(digest):  # no metadata is looked at without a token
        raise InvalidToken("unknown, expired or used-up initial access token")
    metadata = parse_metadata(body)
    client_id = secrets.token_urlsafe(18)  # 144 random bits: no collisions to handle
    client, secret = client_from_metadata(p, client_id, metadata)
    # spent only now: a mistake in the metadata does not use it up (and of two registrations
    # racing for its last use, one gets it)
    if not await p.store.clients.use_initial_token(digest):
        raise InvalidToken("unknown, expired or used-up initial access token")
    registration_token = secrets.token_urlsafe(32)
    client = replace(client, registration_token_digest=secret_digest(registration_token))
    await p.store.clients.add_client(client)
    audit("client.registered", client_id=client_id, auth_method=client.token_endpoint_auth_method)
    return answer(client, p.settings.issuer, secret=secret, registration_token=registration_token)


# ---- RFC 7592: read, update, delete ----

async def registered_client(p: Provider, client_id: str, authorization: str | None) -> Client:
    """The client whose registration access token this is. Every failure is the same 401: an
    unknown id, a client added by an operator, another client's token (§2: invalid_token)."""
    presented = secret_digest(bearer_token(authorization))
    client = await p.store.clients.get_client(client_id)
    expected = client.registration_token_digest if client is not None else None
    matches = hmac.compare_digest(presented, expected or _DECOY_DIGEST)  # the same work either way
    if client is None or expected is None or not matches:
        raise InvalidToken("wrong registration access token or no such registered client")
    return client


async def read(p: Provider, client_id: str, authorization: str | None) -> dict[str, Any]:
    """§2.1: the client's current metadata (its secret is not kept, so it is not shown) and a new
    registration access token (§3)."""
    current = await registered_client(p, client_id, authorization)
    client, registration_token = await _with_new_token(p, current)
    return answer(client, p.settings.issuer, registration_token=registration_token)


async def update(p: Provider, client_id: str, authorization: str | None, body: Body) -> dict[str, Any]:
    """§2.2: the metadata replaced by the body's (fields left out go back to their defaults); the
    client id, its issue time and its secret stay (a secret is issued if the client starts
    needing one); the registration access token is rotated, the old one stops working."""
    current = await registered_client(p, client_id, authorization)
    metadata = parse_metadata(body)
    if metadata.get("client_id") != client_id:
        raise InvalidClientMetadata("update names another client_id",
                                    description="the body's client_id must be the client's own")
    if "client_secret" in metadata and not (
            isinstance(metadata["client_secret"], str) and current.secret_digest is not None
            and hmac.compare_digest(secret_digest(metadata["client_secret"]), current.secret_digest)):
        raise InvalidClientMetadata("update with a wrong client_secret",
                                    description="client_secret must be the client's current secret")
    wanted, secret = client_from_metadata(p, client_id, metadata)

    def keeping(now: Client) -> Client:
        """The new metadata over the record as it is now: its issue time, and its secret and one an
        operator rotated out while its overlap lasts (`client rotate-secret`, maybe meanwhile)."""
        nonlocal secret
        if wanted.token_endpoint_auth_method in SECRET_METHODS and now.secret_digest is not None:
            secret = None
            return replace(wanted, created_at=now.created_at, secret_digest=now.secret_digest,
                           previous_secret_digest=now.previous_secret_digest,
                           previous_secret_expires_at=now.previous_secret_expires_at)
        return replace(wanted, created_at=now.created_at)
    changed, registration_token = await _with_new_token(p, current, keeping)
    audit("client.registration_updated", client_id=client_id)
    return answer(changed, p.settings.issuer, secret=secret, registration_token=registration_token)


async def _with_new_token(p: Provider, current: Client,
                          change: Callable[[Client], Client] = lambda now: now) -> tuple[Client, str]:
    """`change` applied to the record as it is now, stored with a new registration access token,
    and that token. Through the store's WATCH loop (update_client), and only while the record
    still has `current`'s token: of two requests with one token, exactly one gets an answer (with
    the next token), the other 401; and an operator's change meanwhile (`client rotate-secret`,
    `client update`) is built upon, never overwritten with what was read before it."""
    registration_token = secrets.token_urlsafe(32)
    expected = current.registration_token_digest or ""

    def rotated(now: Client) -> Client:
        if not hmac.compare_digest(now.registration_token_digest or "", expected):
            # read or updated with this same token (which rotated it), since it was checked
            raise InvalidToken("registration changed during this request")
        return replace(change(now), registration_token_digest=secret_digest(registration_token))
    changed = await p.store.clients.update_client(current.client_id, rotated)
    if changed is None:
        raise InvalidToken("registration deleted during this request")
    return changed, registration_token


async def delete(p: Provider, client_id: str, authorization: str | None) -> None:
    """§2.3: the client is gone; its tokens stop working as after `tokensrv client remove`."""
    await registered_client(p, client_id, authorization)
    await p.store.clients.remove_client(client_id)
    audit("client.registration_deleted", client_id=client_id)


# ---- metadata ----

@dataclass(frozen=True)
class Body:
    """A request body as sent: its media type and its bytes."""
    content_type: str
    raw: bytes


def parse_metadata(body: Body) -> dict[str, Any]:
    if body.content_type != "application/json":
        raise InvalidClientMetadata("wrong content type", description="the body must be application/json")
    try:
        return parse_object(body.raw, max_bytes=MAX_METADATA_BYTES)
    except JSONRejected as exc:  # its text is fixed, naming only the reason: fine to send
        raise InvalidClientMetadata(f"body refused: {exc}",
                                    description=f"the body must be a JSON object: {exc}") from None


def client_from_metadata(p: Provider, client_id: str, metadata: Mapping[str, Any]) -> tuple[Client, str | None]:
    """RFC 7591 §2 metadata -> a checked client record and its secret, through new_client like
    `tokensrv client add`. Metadata we do not know is ignored (§2); what we know but cannot honour
    is refused with a description naming the field."""
    asked = client_metadata(p, metadata)
    try:
        return new_client(client_id, asked, now=p.now())
    except RedirectUriError as exc:
        description = _for_client(exc)
        raise InvalidRedirectUri(description, description=description) from None
    except RegistrationError as exc:
        raise _refused(_for_client(exc)) from None


def client_metadata(p: Provider, metadata: Mapping[str, Any]) -> ClientMetadata:
    """The ClientMetadata of a registration body: each field read by its type, then what only
    registration refuses (what an operator alone decides is left at its default)."""
    values = {name: _READERS[_KINDS[name]](metadata, name, _DEFAULTS[name]) for name in fields_from("registration")}
    grant_types, response_types = values["grant_types"], _strings(metadata, "response_types", ["code"])
    if "password" in grant_types:
        raise _refused("grant_types: the password grant is not available to registered clients")
    if TOKEN_EXCHANGE in grant_types:
        raise _refused("grant_types: token exchange is set up by an operator, not by registration")
    if set(response_types) - {"code"}:
        raise _refused("response_types: only code is supported")
    if ("authorization_code" in grant_types) != ("code" in response_types):
        raise _refused("grant_types authorization_code and response_types code go together (RFC 7591 §2.1)")
    if values["token_endpoint_auth_method"] == "client_secret_jwt":
        raise _refused("token_endpoint_auth_method: client_secret_jwt is not supported (secrets are "
                       "kept as digests); use private_key_jwt")
    scope, allowed = values["scope"], p.settings.registration_scope_list
    values["scope"] = [s for s in scope.split() if s in allowed] if scope is not None else list(allowed)
    return ClientMetadata(**values, public=values["token_endpoint_auth_method"] == "none")


def answer(client: Client, issuer: str, *, registration_token: str, secret: str | None = None) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1, RFC 7592 §3: the token is REQUIRED)."""
    body: dict[str, Any] = {"client_id": client.client_id, "client_id_issued_at": client.created_at}
    if secret is not None:
        body.update(client_secret=secret, client_secret_expires_at=0)  # 0: it does not expire
    body.update({
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "scope": " ".join(client.scopes),
    })
    optional = {"post_logout_redirect_uris": list(client.post_logout_redirect_uris), "jwks": client.jwks,
                "jwks_uri": client.jwks_uri, "client_name": client.client_name, "logo_uri": client.logo_uri,
                "policy_uri": client.policy_uri, "tos_uri": client.tos_uri,
                "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
                "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
                "backchannel_logout_uri": client.backchannel_logout_uri,
                "allowed_origins": list(client.allowed_origins), "require_mfa": client.require_mfa}
    body.update({k: v for k, v in optional.items() if v})
    if client.backchannel_logout_uri:
        body["backchannel_logout_session_required"] = client.backchannel_logout_session_required
    body["registration_access_token"] = registration_token
    body["registration_client_uri"] = f"{issuer}{REGISTRATION_PATH}/{client.client_id}"
    return body


def _refused(description: str) -> InvalidClientMetadata:
    return InvalidClientMetadata(description, description=description)


def _for_client(exc: RegistrationError) -> str:
    """A registering client sent JSON: the fields named as RFC 7591 names them, the text cut short."""
    text = exc.spelled(str) if isinstance(exc, MetadataError) else str(exc)
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 3] + "..."


def _strings(metadata: Mapping[str, Any], name: str, default: Any = None) -> list[str]:
    value = metadata.get(name)
    if value is None:
        return list(default or [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 50:
        raise _refused(f"{name} must be a list of at most 50 strings")
    return value


def _string(metadata: Mapping[str, Any], name: str, default: Any = None) -> str | None:
    value = metadata.get(name)
    if value is not None and not isinstance(value, str):
        raise _refused(f"{name} must be a string")
    return default if value is None else value


def _flag(metadata: Mapping[str, Any], name: str, default: Any = False) -> bool:
    value = metadata.get(name, bool(default))
    if not isinstance(value, bool):
        raise _refused(f"{name} must be true or false")
    return value


def _object(metadata: Mapping[str, Any], name: str, default: Any = None) -> dict[str, Any] | None:
    value = metadata.get(name)
    if value is not None and not isinstance(value, dict):
        raise _refused(f"{name} must be a JSON object")
    return value


# A registration body's field is read by the type of its ClientMetadata field (a new field of a
# known type needs nothing here); the defaults are RFC 7591 §2's where they differ from the CLI's.
_READERS: dict[str, Callable[[Mapping[str, Any], str, Any], Any]] = {
    "tuple[str, ...]": _strings, "str | None": _string, "bool": _flag, "dict[str, Any] | None": _object}
_KINDS = {**{f.name: str(f.type) for f in dataclasses.fields(ClientMetadata)},
          "scope": "str | None"}  # one space-separated string (§2), narrowed by client_metadata
_DEFAULTS: dict[str, Any] = {
    **{f.name: f.default for f in dataclasses.fields(ClientMetadata)},
    "grant_types": ["authorization_code"], "token_endpoint_auth_method": "client_secret_basic", "scope": None}
