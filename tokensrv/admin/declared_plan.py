"""The plan of `tokensrv apply`: what the store holds against what the file declares (declared.py),
as steps — create, update (each field's old and new value), unchanged, remove, or kept (not in the
file, and --prune not given). Computed from reads only; declared_apply.py carries it out.

Only what apply manages is ever removed (store/managed.py): a client or user it created, or one an
earlier apply adopted because the file named it. A client registered over RFC 7591 never is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokensrv.admin.claim_rules import get_claim_rules
from tokensrv.admin.declared import Declared, DeclaredClient, DeclaredUser, secret_from
from tokensrv.admin.declared_yaml import FileProblems, Problem
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.changes import changed_client, metadata_of
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import MetadataError
from tokensrv.store import Client, User


@dataclass
class Step:
    """One line of the plan. `fields`: field -> (old, new) for an update, (None, new) for a create."""
    kind: str  # "client", "user", "claims"
    name: str
    action: str  # create, update, unchanged, remove, kept
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    adopt: str | None = None  # the managed-set value to record (store/managed.py), None: recorded already
    client: DeclaredClient | None = None
    user: DeclaredUser | None = None
    secret: str | None = None  # a new client's secret from its secret_env (never printed in the plan)
    current: Client | User | None = None

    @property
    def changes(self) -> bool:
        return self.action in ("create", "update", "remove") or self.adopt is not None

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action,
                "fields": {f: {"old": old, "new": new} for f, (old, new) in self.fields.items()}}


@dataclass
class Plan:
    steps: list[Step]
    prune: bool

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "remove": 0, "unchanged": 0, "kept": 0}
        for step in self.steps:
            if step.action in counts:
                counts[step.action] += 1
        return counts

    @property
    def changes(self) -> bool:
        return any(step.changes for step in self.steps)


async def make_plan(p: Provider, declared: Declared, prune: bool) -> Plan:
    """The steps that make the store match the file; FileProblems (every one) if some cannot be."""
    problems: list[Problem] = []
    steps = await _client_steps(p, declared, prune, problems)
    steps += await _user_steps(p, declared, prune)
    if problems:
        raise FileProblems(problems)
    if declared.claims is not None:
        stored = await get_claim_rules(p)
        steps.append(_claims_step(declared.claims, stored["document"] if stored else None))
    order = {"create": 0, "update": 1, "unchanged": 2, "kept": 3, "remove": 4}
    steps.sort(key=lambda s: order[s.action])  # removals last: after what the file adds is in place
    return Plan(steps, prune)


async def _client_steps(p: Provider, declared: Declared, prune: bool, problems: list[Problem]) -> list[Step]:
    existing = {c.client_id: c for c in await p.store.clients.list_clients()}
    managed = await p.store.managed.managed("clients")
    steps = []
    for client in declared.clients:
        current = existing.get(client.client_id)
        try:
            steps.append(_client_step(declared, client, current, managed))
        except FileProblems as exc:
            problems += exc.problems
        except MetadataError as exc:
            problems.append(declared.problem([*client.path, exc.field], exc.spelled(str)))
    named = {c.client_id for c in declared.clients}
    for client_id, current in sorted(existing.items() if declared.declares("clients") else ()):
        if client_id not in named and managed.get(client_id) == str(current.created_at) and not current.registered:
            steps.append(Step("client", client_id, "remove" if prune else "kept", current=current))
    return steps


def _client_step(declared: Declared, client: DeclaredClient, current: Client | None,
                 managed: dict[str, str]) -> Step:
    if current is None:
        new = _metadata_values(metadata_of(client.record))
        return Step("client", client.client_id, "create", {f: (None, v) for f, v in new.items()},
                    adopt="", client=client, secret=secret_from(declared, client))
    updated = changed_client(current, client.metadata)  # MetadataError: a change of credentials' kind
    old, new = _metadata_values(metadata_of(current)), _metadata_values(metadata_of(updated))
    fields = {f: (old[f], new[f]) for f in new if old[f] != new[f]}
    adopt = None if managed.get(client.client_id) == str(current.created_at) else str(current.created_at)
    return Step("client", client.client_id, "update" if fields else "unchanged", fields, adopt=adopt,
                client=client, current=current)


def _metadata_values(metadata: ClientMetadata) -> dict[str, Any]:
    """Each metadata field as JSON shows it (lists, not tuples; scope space-separated as RFC 7591)."""
    values: dict[str, Any] = {}
    for name, value in vars(metadata).items():
        values[name] = " ".join(value) if name == "scope" else list(value) if isinstance(value, tuple) else value
    return values


async def _user_steps(p: Provider, declared: Declared, prune: bool) -> list[Step]:
    managed = await p.store.managed.managed("users")
    steps, named = [], set()
    for user in declared.users:
        current = await p.store.users.find_user(user.username)
        if current is None:
            new = {"email": user.email, "roles": list(user.roles), "groups": list(user.groups),
                   "attributes": dict(user.attributes), "disabled": bool(user.disabled)}
            steps.append(Step("user", user.username, "create", {f: (None, v) for f, v in new.items()},
                              adopt="", user=user))
            continue
        named.add(current.sub)
        fields = user_fields(current, user)
        steps.append(Step("user", current.username, "update" if fields else "unchanged", fields,
                          adopt=None if current.sub in managed else current.username, user=user, current=current))
    for user_found in await p.store.users.list_users() if declared.declares("users") else ():
        if user_found.sub in managed and user_found.sub not in named:
            steps.append(Step("user", user_found.username, "remove" if prune else "kept", current=user_found))
    return steps


def user_fields(current: User, user: DeclaredUser) -> dict[str, tuple[Any, Any]]:
    """What differs: roles and groups as sets (their order means nothing in a token)."""
    fields: dict[str, tuple[Any, Any]] = {}
    if current.email != user.email:
        fields["email"] = (current.email, user.email)
    for name in ("roles", "groups"):
        old, new = getattr(current, name), getattr(user, name)
        if set(old) != set(new):
            fields[name] = (list(old), list(new))
    if dict(current.attributes) != dict(user.attributes):
        fields["attributes"] = (dict(current.attributes), dict(user.attributes))
    if user.disabled is not None and current.disabled != user.disabled:
        fields["disabled"] = (current.disabled, user.disabled)
    return fields


def _claims_step(claims: dict[str, Any], stored: dict[str, Any] | None) -> Step:
    """The claim rules document kept in the store (admin/claim_rules.py), which every instance follows."""
    if stored == claims:
        return Step("claims", "", "unchanged")
    return Step("claims", "", "update" if stored is not None else "create",
                {"claims": (stored, claims)})
