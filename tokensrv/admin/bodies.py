"""The admin API's JSON bodies read into what tokensrv/admin/operations.py takes: every field
checked for its type, an unknown field refused by name (AdminError: the API answers 400
invalid_request with this text). Client fields are ClientMetadata's (RFC 7591 names, and `admin`)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any

from tokensrv.admin.acts import USER_FIELDS
from tokensrv.admin.operations import AdminError
from tokensrv.oauth.clients.fields import ClientMetadata, MetadataChange

MAX_LIST = 100  # entries of one list field: far more than any client or user needs
_TYPES = {f.name: str(f.type) for f in dataclasses.fields(ClientMetadata)}
CLIENT_FIELDS = tuple(_TYPES)


def _unknown(body: Mapping[str, Any], known: Collection[str]) -> None:
    for name in body:
        if name not in known:
            raise AdminError(f"unknown field {name[:64]!r}")


def strings(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = body[name]
    if not isinstance(value, list) or len(value) > MAX_LIST or not all(isinstance(v, str) for v in value):
        raise AdminError(f"{name} must be a list of at most {MAX_LIST} strings")
    return tuple(value)


def text(body: Mapping[str, Any], name: str, optional: bool = True) -> str | None:
    value = body[name]
    if not isinstance(value, str) and not (optional and value is None):
        raise AdminError(f"{name} must be a string" + (" or null" if optional else ""))
    return value


def flag(body: Mapping[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise AdminError(f"{name} must be true or false")
    return value


def _client_value(body: Mapping[str, Any], name: str) -> Any:
    kind = _TYPES[name]
    if name == "scope" and isinstance(body[name], str):  # RFC 7591 spells it space-separated
        return tuple(body[name].split())
    if kind == "tuple[str, ...]":
        return strings(body, name)
    if kind == "bool":  # null: back to its default (False), as `client update --unset-...`
        return None if body[name] is None else flag(body, name)
    if kind == "str | None":
        return text(body, name)
    if body[name] is not None and not isinstance(body[name], dict):
        raise AdminError(f"{name} must be a JSON object or null")
    return body[name]


def new_client(body: Mapping[str, Any]) -> tuple[str, ClientMetadata]:
    """POST /admin/clients: the client id and its metadata."""
    _unknown(body, ("client_id", *CLIENT_FIELDS))
    if "client_id" not in body:
        raise AdminError("client_id is required")
    client_id = text(body, "client_id", optional=False) or ""
    values = {name: _client_value(body, name) for name in body if name != "client_id"}
    return client_id, ClientMetadata(**{name: value for name, value in values.items() if value is not None})


def client_change(body: Mapping[str, Any]) -> MetadataChange:
    """PATCH /admin/clients/{id}: each named field replaced whole (null: back to unset)."""
    _unknown(body, CLIENT_FIELDS)
    if not body:
        raise AdminError("nothing to change: name at least one field")
    return MetadataChange({name: _client_value(body, name) for name in body})


def attributes(body: Mapping[str, Any]) -> dict[str, str]:
    value = body["attributes"]
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise AdminError("attributes must be a JSON object of strings")
    return value


def new_user(body: Mapping[str, Any]) -> dict[str, Any]:
    """POST /admin/users: add_user's arguments."""
    _unknown(body, ("username", "email", "roles", "groups", "attributes", "password"))
    if "username" not in body:
        raise AdminError("username is required")
    return {"username": text(body, "username", optional=False),
            "password": text(body, "password") if "password" in body else None,
            "email": text(body, "email") if "email" in body else None,
            "roles": strings(body, "roles") if "roles" in body else (),
            "groups": strings(body, "groups") if "groups" in body else (),
            "attributes": attributes(body) if "attributes" in body else {}}


def user_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """PATCH /admin/users/{username}: the fields to replace, each checked for its type."""
    _unknown(body, USER_FIELDS)
    if not body:
        raise AdminError("nothing to change: name at least one field")
    readers: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
        "email": text, "roles": strings, "groups": strings, "disabled": flag,
        "attributes": lambda b, _name: attributes(b)}
    return {name: readers[name](body, name) for name in body}


def only(body: Mapping[str, Any], name: str, required: bool = True) -> Any:
    """A body of one field (`{"password": ...}`, `{"token": ...}`, `{"overlap": ...}`)."""
    _unknown(body, (name,))
    if name not in body and required:
        raise AdminError(f"{name} is required")
    return body.get(name)
