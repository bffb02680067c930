"""Which admin command goes to which route of the admin API (`--server URL`), and how its body is
built from the same flags: one table, ROUTES. The answers are the views the direct mode prints
(tokensrv.admin.operations' client_view, user_view, key_view...), so cli/output.py prints them the
same way and a script cannot tell the two modes apart. A command without a route (keys init, user
import, status...) is refused with exit status 2 before any credential is read.

`client update` and `user update` take flags that add and remove list entries, while the API's
PATCH replaces each named field whole: the command reads the record, applies the change with the
same code as the direct mode (MetadataChange, UserChange), and sends the fields it changed.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tokensrv.admin import operations as admin
from tokensrv.cli import remote
from tokensrv.cli.client_flags import CLIENT_FLAGS
from tokensrv.cli.client_update import change_from_args, update_flag
from tokensrv.cli.console import CLIError, read_password, read_token
from tokensrv.cli.output import client_rows
from tokensrv.cli.values import duration, read_jwks
from tokensrv.oauth.clients.changes import MAX_OVERLAP
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.store import User

Args = argparse.Namespace
Body = Callable[[Args], Any]
Shape = Callable[[Args, Any], Any]


@dataclass(frozen=True)
class Route:
    method: str | Callable[[Args], str]
    path: Callable[[Args], str]
    body: Body | None = None  # the JSON sent
    shape: Shape | None = None  # the answer as the direct mode prints it
    # update: the body is built from the record as a GET of the same path reads it
    patch: Callable[[Args, Any], dict[str, Any]] | None = None
    then: Callable[[Args], str] | None = None  # after a 204: the path of what the direct mode prints


class NotRemote(Exception):
    """The command has no route in the admin API."""


def _client(a: Args) -> str:
    return remote.path_of("clients", a.client_id)


def _user(*more: str) -> Callable[[Args], str]:
    return lambda a: remote.path_of("users", a.username, *more)


def _fixed(*parts: str) -> Callable[[Args], str]:
    return lambda a: remote.path_of(*parts)


# ---- bodies ----

def client_body(a: Args) -> dict[str, Any]:
    """`client add`'s flags as the POST body: the fields given (a default left to the server)."""
    body: dict[str, Any] = {"client_id": a.client_id}
    for field in CLIENT_FLAGS:
        value = getattr(a, field)
        if value not in (None, False, []):
            body[field] = read_jwks(value) if field == "jwks" else value
    return body


# the client_view's name of a metadata field, where it differs
_VIEW_NAME = {"scope": "scopes"}


def client_patch(a: Args, view: dict[str, Any]) -> dict[str, Any]:
    """`client update`'s flags against the client as it is: values set or unset (null), lists whole."""
    change = change_from_args(a)
    if not change.fields():
        raise CLIError("nothing to change: give at least one flag (see --help)")
    lists = {*change.added, *change.removed}
    lists_now: dict[str, Any] = {f: tuple(view.get(_VIEW_NAME.get(f, f)) or ()) for f in lists}
    current = ClientMetadata(**lists_now)
    for field, value in change.missing(current):
        raise CLIError(f"{update_flag(field).replace('--add-', '--remove-', 1)} {value!r}: "
                       f"client {a.client_id!r} has no such value")
    changed = change.apply(current)
    return {**change.values, **{f: list(getattr(changed, f)) for f in lists}}


def user_body(a: Args) -> dict[str, Any]:
    return {"username": a.username, "email": a.email, "roles": a.roles, "groups": a.groups,
            "attributes": dict(a.attributes), "password": read_password(a)}


def user_patch(a: Args, view: dict[str, Any]) -> dict[str, Any]:
    """`user update`'s flags against the user as it is, with the direct mode's UserChange."""
    change = admin.UserChange(
        email=a.email, unset_email=a.unset_email, add_roles=tuple(a.add_role), remove_roles=tuple(a.remove_role),
        add_groups=tuple(a.add_group), remove_groups=tuple(a.remove_group), attributes=tuple(a.attributes),
        unset_attributes=tuple(a.unset_attributes))
    user = User(sub=view["sub"], username=view["username"], password_hash="", email=view["email"],
                roles=tuple(view["roles"]), groups=tuple(view["groups"]),
                attributes=tuple(sorted(view["attributes"].items())))
    after = change.apply(user)
    body: dict[str, Any] = {}
    if change.email is not None or change.unset_email:
        body["email"] = after.email
    if change.add_roles or change.remove_roles:
        body["roles"] = list(after.roles)
    if change.add_groups or change.remove_groups:
        body["groups"] = list(after.groups)
    if change.attributes or change.unset_attributes:
        body["attributes"] = dict(after.attributes)
    return body


def overlap_body(a: Args) -> dict[str, Any]:
    overlap = duration(a.overlap, "--overlap")
    if overlap > MAX_OVERLAP:
        raise CLIError(f"--overlap must be at most {MAX_OVERLAP // 86400}d, got {a.overlap!r}")
    return {"overlap": overlap}


def _removed(name: str) -> Shape:
    return lambda a, _: {"removed": getattr(a, name)}


def _consents_path(a: Args) -> str:
    if a.revoke is None:
        return remote.path_of("users", a.username, "consents")
    return remote.path_of("users", a.username, "consents", a.revoke)


def _consents_shape(a: Args, answer: Any) -> Any:
    # the API answers a withdrawal with 204: what it says, without the direct mode's count of families
    if a.revoke is None or answer is not None:
        return answer
    return {"username": a.username, "client_id": a.revoke, "withdrawn": True}


ROUTES: dict[tuple[str, str | None], Route] = {
    ("client", "list"): Route("GET", _fixed("clients"), shape=lambda a, views: client_rows(views)),
    ("client", "show"): Route("GET", _client),
    ("client", "add"): Route("POST", _fixed("clients"), body=client_body),
    ("client", "update"): Route("PATCH", _client, patch=client_patch),
    ("client", "remove"): Route("DELETE", _client, shape=_removed("client_id")),
    ("client", "rotate-secret"): Route("POST", lambda a: remote.path_of("clients", a.client_id, "secret"),
                                       body=overlap_body),
    ("user", "list"): Route("GET", _fixed("users")),
    ("user", "show"): Route("GET", _user()),
    ("user", "add"): Route("POST", _fixed("users"), body=user_body),
    ("user", "update"): Route("PATCH", _user(), patch=user_patch),
    ("user", "disable"): Route("PATCH", _user(), body=lambda a: {"disabled": True}),
    ("user", "enable"): Route("PATCH", _user(), body=lambda a: {"disabled": False}),
    ("user", "passwd"): Route("PUT", _user("password"), body=lambda a: {"password": read_password(a)},
                              then=_user()),
    ("user", "remove"): Route("DELETE", _user(), shape=_removed("username")),
    ("user", "revoke"): Route("POST", _user("revoke")),
    ("user", "consents"): Route(lambda a: "GET" if a.revoke is None else "DELETE", _consents_path,
                                shape=_consents_shape),
    ("keys", "list"): Route("GET", _fixed("keys")),
    ("keys", "rotate"): Route("POST", _fixed("keys", "rotate")),
    ("keys", "revoke"): Route("POST", lambda a: remote.path_of("keys", a.kid, "revoke")),
    ("token", "revoke"): Route("POST", _fixed("tokens", "revoke"), body=lambda a: {"token": read_token(a)}),
}


def route_of(args: Args) -> tuple[tuple[str, str | None], Route]:
    command = (args.command, getattr(args, "action", None))
    route = ROUTES.get(command)
    if route is None:
        raise NotRemote(" ".join(c for c in command if c))
    return command, route


async def run(args: Args, server: str) -> Any:
    command, route = route_of(args)
    body = route.body(args) if route.body else None  # flags read (and a password asked) before the network
    creds = remote.credentials(args, server)
    method = route.method if isinstance(route.method, str) else route.method(args)
    async with remote.session() as http:
        api = remote.AdminAPI(http, creds)
        if route.patch is not None:
            body = route.patch(args, await api.call("GET", route.path(args)))
        if command == ("keys", "rotate"):
            print("rotating (a new key may be generated)...", file=sys.stderr, flush=True)
        answer = await api.call(method, route.path(args), body)
        if route.then is not None:
            answer = await api.call("GET", route.then(args))
    return route.shape(args, answer) if route.shape else answer
