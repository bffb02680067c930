"""The declared configuration (`tokensrv apply -f FILE`): the file read, checked against its JSON
Schema (tokensrv.schema.json, shipped with the package) and then by the rules every client and user
passes (oauth/clients/metadata.new_client, the user checks of operations.py, claims.py), into what
the store should hold. Every error carries its line and column; all of them are reported at once.

A client is exactly what its entry says: a field left out is its default, so the file alone decides
it and is checked alone. A user's email, roles, groups and attributes are what its entry says;
`disabled` only when given (an operator's disable in an incident is not undone by the next CI run).
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema_rs

from tokensrv.admin import operations
from tokensrv.admin.declared_yaml import Document, FileProblems, Problem, problem_at, read_document
from tokensrv.claims import BOOLEAN_ATTRIBUTES, ClaimsError, rules_of
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import MetadataError, RegistrationError, new_client
from tokensrv.store import Client

MIN_SECRET = 32  # characters of a secret read from secret_env: as strong as a generated one
Path = list[str | int]


def schema_text() -> str:
    """The JSON Schema of the file (draft 2020-12), as shipped: what `apply --print-schema` prints."""
    return resources.files("tokensrv.admin").joinpath("tokensrv.schema.json").read_text(encoding="utf-8")


_VALIDATOR = jsonschema_rs.Draft202012Validator(json.loads(schema_text()))


@dataclass(frozen=True)
class DeclaredClient:
    client_id: str
    metadata: ClientMetadata
    record: Client  # as new_client builds it from the entry: what the store should hold
    secret_env: str | None
    path: Path


@dataclass(frozen=True)
class DeclaredUser:
    username: str
    email: str | None
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    attributes: Mapping[str, str]
    disabled: bool | None  # None: left as it is
    path: Path


@dataclass(frozen=True)
class Declared:
    """What the file declares, checked, and its node tree (to place errors found later)."""
    clients: tuple[DeclaredClient, ...]
    users: tuple[DeclaredUser, ...]
    claims: dict[str, Any] | None
    document: Document

    def problem(self, path: Path, message: str) -> Problem:
        return problem_at(self.document.root, path, message)

    def declares(self, section: str) -> bool:
        """Whether the file has the section (`clients: []` too): one it leaves out says nothing of that kind."""
        return isinstance(self.document.data, dict) and section in self.document.data


def read_declared(raw: bytes) -> Declared:
    """The file's declarations, or FileProblems with every problem found."""
    document = read_document(raw)
    problems = schema_problems(document)
    if problems:
        raise FileProblems(problems)
    data: dict[str, Any] = document.data
    clients, users = [], []
    for index, entry in enumerate(data.get("clients", [])):
        found = _client(document, ["clients", index], entry, problems)
        if found is not None:
            clients.append(found)
    for index, entry in enumerate(data.get("users", [])):
        found_user = _user(document, ["users", index], entry, problems)
        if found_user is not None:
            users.append(found_user)
    problems += _duplicates(document, data.get("clients", []), "client_id")
    problems += _duplicates(document, data.get("users", []), "username")
    claims = data.get("claims")
    if claims is not None:
        try:
            rules_of(claims)
        except ClaimsError as exc:
            problems.append(_claims_problem(document, str(exc)))
    if problems:
        raise FileProblems(problems)
    return Declared(tuple(clients), tuple(users), claims, document)


def schema_problems(document: Document) -> list[Problem]:
    """Every place the file breaks its JSON Schema, each at its line."""
    if not isinstance(document.data, dict):
        return [problem_at(document.root, [], "the file must be a mapping with version: 1")]
    problems = []
    for error in _VALIDATOR.iter_errors(document.data):
        path: Path = list(error.instance_path)
        unexpected = getattr(error.kind, "unexpected", None)
        if unexpected:  # an unknown key: its own line, and a word on passwords
            problems += [problem_at(document.root, [*path, key], _unknown(path, key), key=True)
                         for key in unexpected]
        else:
            problems.append(problem_at(document.root, path, error.message))
    return problems


def _unknown(path: Path, key: str) -> str:
    if path[:1] == ["users"] and key in ("password", "password_hash"):
        return "passwords are never in the file: an operator sets one with `tokensrv user passwd USERNAME`"
    return f"unknown key {key!r}"


def _client(document: Document, path: Path, entry: dict[str, Any], problems: list[Problem]) -> DeclaredClient | None:
    """The entry as client metadata (a field left out: its default), checked as a new client is."""
    values = {f.name: _value(f.name, entry[f.name]) for f in dataclasses.fields(ClientMetadata)
              if f.name in entry and entry[f.name] is not None}
    metadata = ClientMetadata(**values)
    try:
        record, secret = new_client(entry["client_id"], metadata)
    except MetadataError as exc:
        problems.append(problem_at(document.root, _field_path(path, entry, exc), exc.spelled(str)))
        return None
    except RegistrationError as exc:
        problems.append(problem_at(document.root, [*path, "client_id"], str(exc)))
        return None
    secret_env = entry.get("secret_env")
    if secret_env is not None and secret is None:
        method = record.token_endpoint_auth_method
        problems.append(problem_at(document.root, [*path, "secret_env"], "only a client with a secret "
                                   f"(client_secret_basic or client_secret_post) has one, not {method}"))
        return None
    return DeclaredClient(record.client_id, metadata, record, secret_env, path)


def _value(field: str, value: Any) -> Any:
    if field == "scope":  # RFC 7591 §2: space-separated
        return tuple(value.split())
    return tuple(value) if isinstance(value, list) else value


def _field_path(path: Path, entry: dict[str, Any], exc: MetadataError) -> Path:
    """The value a metadata error is about: the list item it names, else the field (or the entry)."""
    if exc.field not in entry:
        return path
    value = entry[exc.field]
    if isinstance(value, list):
        named = set(exc.values.values())
        for index, item in enumerate(value):
            if repr(item) in named or repr(item[:80]) in named or repr(item[:40]) in named:
                return [*path, exc.field, index]
    return [*path, exc.field]


def _user(document: Document, path: Path, entry: dict[str, Any], problems: list[Problem]) -> DeclaredUser | None:
    attributes = dict(entry.get("attributes", {}))
    if "email_verified" in entry:
        attributes["email_verified"] = "true" if entry["email_verified"] else "false"
    user = DeclaredUser(entry["username"], entry.get("email"), tuple(dict.fromkeys(entry.get("roles", []))),
                        tuple(dict.fromkeys(entry.get("groups", []))), attributes, entry.get("disabled"), path)
    try:
        operations.check_new_user(user.username, user.email, user.groups, user.attributes)
    except operations.AdminError as exc:
        problems.append(problem_at(document.root, _user_field(path, entry, str(exc)), str(exc)))
        return None
    return user


def _user_field(path: Path, entry: dict[str, Any], message: str) -> Path:
    """The user field an error is about, as far as its message tells (else the entry)."""
    if "email" in message and "email" in entry:
        return [*path, "email"]
    for key in (*BOOLEAN_ATTRIBUTES, *entry.get("attributes", {})):
        if repr(key) in message:
            return [*path, "email_verified"] if key == "email_verified" and key in entry \
                else [*path, "attributes", key]
    for field in ("username", "groups"):
        if field.rstrip("s") in message and field in entry:
            return [*path, field]
    return path


def _duplicates(document: Document, entries: list[dict[str, Any]], key: str) -> list[Problem]:
    """An id declared twice (usernames regardless of case, as the store has them), at the second."""
    kind = "clients" if key == "client_id" else "users"
    seen: dict[str, int] = {}
    problems = []
    for index, entry in enumerate(entries):
        name = entry[key] if key == "client_id" else entry[key].casefold()
        if name in seen:
            first = problem_at(document.root, [kind, seen[name]], "")
            problems.append(problem_at(document.root, [kind, index, key], f"{key} {entry[key]!r} is declared "
                                       f"twice (first at line {first.line})"))
        seen.setdefault(name, index)
    return problems


def _claims_problem(document: Document, message: str) -> Problem:
    """claims.py names the entry at fault first (`scopes.team: ...`): the error goes to its line."""
    where, sep, why = message.partition(": ")
    path: Path = ["claims", *where.split(".")] if sep and " " not in where else ["claims"]
    return problem_at(document.root, path, why if len(path) > 1 else message)


def secret_from(declared: Declared, client: DeclaredClient) -> str | None:
    """A new client's secret from its secret_env (None: generate one); FileProblems if it is not set."""
    if client.secret_env is None:
        return None
    secret = os.environ.get(client.secret_env, "")
    if not secret:
        raise FileProblems([declared.problem([*client.path, "secret_env"],
                                             f"the environment variable {client.secret_env} is not set")])
    if len(secret) < MIN_SECRET or not secret.isprintable() or secret != secret.strip():
        raise FileProblems([declared.problem(
            [*client.path, "secret_env"], f"the secret in {client.secret_env} must be at least {MIN_SECRET} "
            "printable characters without outer spaces")])
    return secret
