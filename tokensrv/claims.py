"""What a user's record may carry (attributes, groups) and which claims tokens may be given from it:
the OIDC standard claims by scope (OIDC Core §5.1, §5.4), and the operator's rules document: custom
scopes mapped to claims, per-client extra access-token claims. The document is kept in the store
(`tokensrv claims set`, store/claim_rules.py), else read from TOKENSRV_CLAIMS's file; both are
checked here, by the same rules (rules_of).

Shared by the settings (the file is read and checked at start) and the user commands (bounds), so it
imports nothing of tokensrv. Releasing claims is oauth/release.py.

The bounds keep every access token far below what read_own_jwt accepts (own_tokens.MAX_OWN_TOKEN,
8192 characters): 32 groups of 64 characters and MAX_EXTRA_CLAIMS values of MAX_VALUE characters
(JSON-encoded) are under 5 KB of payload, with the usual claims.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# claims the server sets, that no configuration may override or map (RFC 7519 §4.1, RFC 9068 §2.2,
# RFC 8693 §4, RFC 7800, OIDC Core §2 and §3.1.3.6, Back-Channel Logout §2.4), and ours
REGISTERED = frozenset((
    "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "cnf", "act", "may_act", "auth_time",
    "acr", "amr", "sid", "nonce", "azp", "at_hash", "c_hash", "s_hash", "typ", "events", "roles", "groups"))
# OIDC Core §5.4: the standard claims each scope releases
STANDARD_SCOPES: Mapping[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
                "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
STANDARD_CLAIMS = frozenset(c for claims in STANDARD_SCOPES.values() for c in claims)
BUILT_IN_SCOPES = ("openid", *STANDARD_SCOPES, "groups")
RESERVED_SCOPE_PREFIX = "tokensrv:"  # tokensrv:admin and any later scope of ours: no custom scope
BOOLEAN_ATTRIBUTES = ("email_verified", "phone_number_verified")
ADDRESS_MEMBERS = ("formatted", "street_address", "locality", "region", "postal_code", "country")

MAX_ATTRIBUTES = 32
MAX_GROUPS = 32
MAX_GROUP = 64  # characters
MAX_VALUE = 256  # characters of the JSON-encoded value
MAX_EXTRA_CLAIMS = 10  # custom-scope and per-client claims one access token can carry, together
MAX_FILE = 64 * 1024
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class ClaimsError(ValueError):
    """A bad attribute, group or claims file entry: one line, safe to print."""


# ---- what a user record carries ----

def check_attribute(key: str, value: str) -> None:
    """An attribute's name and value, as the user commands and the bulk import accept them."""
    check_attribute_name(key)
    if len(json.dumps(value)) > MAX_VALUE:
        raise ClaimsError(f"attribute {key!r}: the value must be at most {MAX_VALUE} characters")
    if key in BOOLEAN_ATTRIBUTES and value not in ("true", "false"):
        raise ClaimsError(f"attribute {key!r} must be true or false, got {value!r}")
    if key == "updated_at" and not (value.isascii() and value.isdigit()):  # not '²', which int() refuses
        raise ClaimsError(f"attribute 'updated_at' must be seconds since 1970 (a whole number), got {value!r}")
    if key == "address":
        _check_address(value)


def check_attribute_name(key: str) -> None:
    if not _NAME.fullmatch(key):
        raise ClaimsError(f"attribute name {key!r} must be a letter then up to 63 letters, digits, _ . -")
    if key in REGISTERED or key in ("email", "username", "password"):
        raise ClaimsError(f"{key!r} cannot be an attribute (it is set by the server or by its own option)")


def _check_address(value: str) -> None:
    """OIDC Core §5.1.1: a JSON object of string members."""
    try:
        address = json.loads(value)
    except ValueError:
        address = None
    if not isinstance(address, dict) or not address or not all(
            k in ADDRESS_MEMBERS and isinstance(v, str) for k, v in address.items()):
        raise ClaimsError(f"attribute 'address' must be a JSON object of {', '.join(ADDRESS_MEMBERS)} strings")


def check_attributes(attributes: Mapping[str, str], groups: tuple[str, ...]) -> None:
    for key, value in attributes.items():
        check_attribute(key, value)
    if len(attributes) > MAX_ATTRIBUTES:
        raise ClaimsError(f"a user has at most {MAX_ATTRIBUTES} attributes, got {len(attributes)}")
    for group in groups:
        if not group or len(group) > MAX_GROUP or not group.isprintable() or group != group.strip():
            raise ClaimsError(f"group {group!r} must be 1-{MAX_GROUP} printable characters, no outer spaces")
    if len(groups) > MAX_GROUPS:
        raise ClaimsError(f"a user is in at most {MAX_GROUPS} groups, got {len(groups)}")


def parse_attribute(text: str) -> tuple[str, str]:
    """KEY=VALUE, as `--attr` takes it."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ClaimsError(f"--attr wants KEY=VALUE, got {text!r}")
    check_attribute(key, value)
    return key, value


# ---- the claims file ----

@dataclass(frozen=True)
class ClientClaims:
    """One client's extra access-token claims, split once at load: the static ones are a dict to
    copy, the others name a user attribute (a client's own token has no user: static only)."""
    static: Mapping[str, Any]
    from_user: tuple[tuple[str, str], ...]  # (claim, attribute)


@dataclass(frozen=True, eq=False)  # eq=False: hashable (Settings is), compared by identity
class ClaimRules:
    scopes: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # scope: (claim, attr)
    clients: Mapping[str, ClientClaims] = field(default_factory=dict)

    @property
    def scope_names(self) -> list[str]:
        return [*BUILT_IN_SCOPES, *self.scopes]

    def document(self) -> dict[str, Any]:
        """The rules as the JSON document they were read from (a client's static claims first)."""
        clients = {client_id: {**{c: {"value": v} for c, v in extra.static.items()},
                               **{c: {"attribute": a} for c, a in extra.from_user}}
                   for client_id, extra in self.clients.items()}
        scopes = {scope: {c: {"attribute": a} for c, a in pairs} for scope, pairs in self.scopes.items()}
        return {"scopes": scopes, "clients": clients}

    @property
    def claim_names(self) -> list[str]:
        names = ["roles", "groups", *STANDARD_CLAIMS, *(c for pairs in self.scopes.values() for c, _ in pairs)]
        for extra in self.clients.values():
            names += [*extra.static, *(c for c, _ in extra.from_user)]
        return sorted(set(names))


NO_RULES = ClaimRules()


def load_rules(path: Path) -> ClaimRules:
    """The file's rules, or ClaimsError naming the file and the entry."""
    try:
        with path.open("rb") as source:
            raw = source.read(MAX_FILE + 1)
    except OSError as exc:
        raise ClaimsError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_FILE:
        raise ClaimsError(f"{path}: larger than {MAX_FILE} bytes")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ClaimsError(f"{path}: not JSON ({exc})") from None
    try:
        return rules_of(doc)
    except ClaimsError as exc:
        raise ClaimsError(f"{path}: {exc}") from None


def rules_of(doc: object) -> ClaimRules:
    """The rules of a parsed document (the file's, or the store's), or ClaimsError naming the entry
    by its path (scopes.<scope>.<claim>, clients.<client_id>.<claim>)."""
    try:
        size = len(json.dumps(doc))
    except (TypeError, ValueError):  # a YAML date, say: the store keeps JSON
        raise ClaimsError("the document: holds a value JSON cannot carry") from None
    if size > MAX_FILE:
        raise ClaimsError(f"the document: larger than {MAX_FILE} bytes as JSON")
    entries = _object(doc, "the document")
    if unknown := set(entries) - {"scopes", "clients"}:
        raise ClaimsError(f"unknown entry {sorted(unknown)[0]!r} (only 'scopes' and 'clients')")
    scopes = {scope: _scope(scope, spec) for scope, spec in _object(entries.get("scopes", {}), "scopes").items()}
    scope_claims = [c for pairs in scopes.values() for c, _ in pairs]
    if len(scope_claims) != len(set(scope_claims)):
        raise ClaimsError("scopes: a claim is released by two custom scopes")
    clients = {}
    for client_id, spec in _object(entries.get("clients", {}), "clients").items():
        where = f"clients.{client_id}"
        extra = {claim: _source(f"{where}.{claim}", claim, source) for claim, source in _object(spec, where).items()}
        if clash := set(extra) & set(scope_claims):
            raise ClaimsError(f"{where}.{sorted(clash)[0]}: already released by a custom scope")
        if len(extra) + len(scope_claims) > MAX_EXTRA_CLAIMS:
            raise ClaimsError(f"{where}: {len(extra)} claims and {len(scope_claims)} from custom scopes exceed "
                              f"{MAX_EXTRA_CLAIMS} extra claims per token")
        clients[client_id] = ClientClaims({c: v for c, (a, v) in extra.items() if a is None},
                                          tuple((c, a) for c, (a, _) in extra.items() if a is not None))
    if len(scope_claims) > MAX_EXTRA_CLAIMS:
        raise ClaimsError(f"scopes: {len(scope_claims)} claims exceed {MAX_EXTRA_CLAIMS} extra claims per token")
    return ClaimRules(scopes, clients)


def _scope(scope: str, spec: object) -> tuple[tuple[str, str], ...]:
    where = f"scopes.{scope}"
    if not is_scope_token(scope) or scope in BUILT_IN_SCOPES:
        raise ClaimsError(f"{where}: not a scope token, or a built-in scope ({' '.join(BUILT_IN_SCOPES)})")
    if scope.startswith(RESERVED_SCOPE_PREFIX):
        raise ClaimsError(f"{where}: scopes starting with {RESERVED_SCOPE_PREFIX!r} are tokensrv's own")
    pairs = []
    for claim, source in _object(spec, where).items():
        attribute, _ = _source(f"{where}.{claim}", claim, source)
        if attribute is None:
            raise ClaimsError(f"{where}.{claim}: a scope releases a user attribute ({{\"attribute\": NAME}})")
        pairs.append((claim, attribute))
    if not pairs:
        raise ClaimsError(f"{where}: releases no claim")
    return tuple(pairs)


def _source(where: str, claim: str, source: object) -> tuple[str | None, Any]:
    """(attribute, None) for {"attribute": NAME}, (None, value) for {"value": VALUE}."""
    if claim in REGISTERED or claim in STANDARD_CLAIMS:
        raise ClaimsError(f"{where}: {claim!r} is a registered or standard claim: it can never be overridden "
                          "or mapped")
    if not _NAME.fullmatch(claim):
        raise ClaimsError(f"{where}: a claim name is a letter then up to 63 letters, digits, _ . -")
    spec = _object(source, where)
    if set(spec) == {"attribute"}:
        try:
            check_attribute_name(str(spec["attribute"]))
        except ClaimsError as exc:
            raise ClaimsError(f"{where}: {exc}") from None
        return str(spec["attribute"]), None
    if set(spec) == {"value"}:
        if len(json.dumps(spec["value"])) > MAX_VALUE:
            raise ClaimsError(f"{where}: the value must be at most {MAX_VALUE} characters as JSON")
        return None, spec["value"]
    raise ClaimsError(f"{where}: want {{\"attribute\": NAME}} or {{\"value\": VALUE}}")


def is_scope_token(value: str) -> bool:
    """RFC 6749 §3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII but space, " and \\."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClaimsError(f"{where}: must be a JSON object")
    return value
