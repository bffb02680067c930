"""`tokensrv client update ID` and `tokensrv client rotate-secret ID`: a client changed in place, its
id and (but for a rotation) its secret kept. Update's flags come from `client add`'s table
(cli/client_flags.CLIENT_FLAGS): a list gets --add-X/--remove-X, a switch --X/--no-X, a value --X
and --unset-X; the result is checked as a new client's metadata is (oauth/clients/changes.py)."""
from __future__ import annotations

import argparse
from typing import Any

from tokensrv.admin import operations as admin
from tokensrv.cli.client_flags import CLIENT_FLAGS
from tokensrv.cli.console import CLIError
from tokensrv.cli.parsing import Commands, add_command
from tokensrv.cli.values import duration, read_jwks
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.changes import MAX_OVERLAP
from tokensrv.oauth.clients.fields import MetadataChange
from tokensrv.oauth.clients.metadata import GRANT_TYPE_ALIASES
from tokensrv.observability.logs import audit


def _kind(options: dict[str, Any]) -> str:
    return {"append": "list", "store_true": "switch"}.get(options.get("action", ""), "value")


def update_flag(field: str) -> str:
    """How `client update` names a field in its errors: the flag that sets it (a list's --add-X)."""
    if field not in CLIENT_FLAGS:
        return field
    flag, options = CLIENT_FLAGS[field]
    return f"--add-{flag[2:]}" if _kind(options) == "list" else flag


def add_parsers(client: Commands[Any]) -> None:
    update = add_command(client, "update", "change a client in place (its id and secret stay); every instance "
                         "uses the change at once")
    update.add_argument("client_id", metavar="ID", help="the client's id")
    for field, (flag, options) in CLIENT_FLAGS.items():
        _add_update_flags(update, field, flag, options)
    rotate = add_command(client, "rotate-secret", "give a confidential client a new secret, printed once; the "
                         "old one keeps working for --overlap")
    rotate.add_argument("client_id", metavar="ID", help="the client's id")
    rotate.add_argument("--overlap", default="24h", help="how long the old secret keeps working: seconds, or a "
                        "number with s, m, h or d (default 24h, 0 stops it at once, at most 30d)")


def _add_update_flags(parser: argparse.ArgumentParser, field: str, flag: str, options: dict[str, Any]) -> None:
    name, about = flag[2:], options.get("help") or field.replace("_", " ")
    kind = _kind(options)
    if kind == "list":
        metavar = options.get("metavar", name.replace("-", "_").upper())
        parser.add_argument(f"--add-{name}", dest=f"add_{field}", action="append", default=[], metavar=metavar,
                            help=f"add one (repeatable): {about}")
        parser.add_argument(f"--remove-{name}", dest=f"remove_{field}", action="append", default=[],
                            metavar=metavar, help="remove one (repeatable)")
    elif kind == "switch":
        parser.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction, default=None,
                            help=f"{about} (--no-{name}: not any more)")
    else:
        parser.add_argument(flag, dest=field, default=None, help=about,
                            **{k: v for k, v in options.items() if k in ("choices", "metavar", "type")})
        if "choices" not in options:
            parser.add_argument(f"--unset-{name}", dest=f"unset_{field}", action="store_true",
                                help=f"clear {flag} (back to its default)")


def change_from_args(a: argparse.Namespace) -> MetadataChange:
    """`client update`'s flags as a change of metadata; --jwks-file read here."""
    values: dict[str, Any] = {}
    added: dict[str, tuple[str, ...]] = {}
    removed: dict[str, tuple[str, ...]] = {}
    for field, (flag, options) in CLIENT_FLAGS.items():
        if _kind(options) == "list":
            added[field], removed[field] = tuple(getattr(a, f"add_{field}")), tuple(getattr(a, f"remove_{field}"))
            continue
        value = getattr(a, field)
        if getattr(a, f"unset_{field}", False):
            if value is not None:
                raise CLIError(f"{flag} and --unset-{flag[2:]} together: choose one")
            values[field] = None
        elif value is not None:
            values[field] = read_jwks(value) if field == "jwks" else value
    # our short names of grant types are their URNs in the record: removed as they were added
    removed["grant_types"] = tuple(GRANT_TYPE_ALIASES.get(g, g) for g in removed["grant_types"])
    return MetadataChange(values, {f: v for f, v in added.items() if v}, {f: v for f, v in removed.items() if v})


async def client_update(p: Provider, a: argparse.Namespace) -> Any:
    change = change_from_args(a)
    if not change.fields():
        raise CLIError("nothing to change: give at least one flag (see --help)")
    result = await admin.update_client(p, a.client_id, change, update_flag)
    audit("admin.client_updated", client_id=a.client_id, changed=change.fields())  # names, never values
    return result


async def client_rotate_secret(p: Provider, a: argparse.Namespace) -> Any:
    overlap = duration(a.overlap, "--overlap")
    if overlap > MAX_OVERLAP:
        raise CLIError(f"--overlap must be at most {MAX_OVERLAP // 86400}d, got {a.overlap!r}")
    result = await admin.rotate_secret(p, a.client_id, overlap)
    audit("admin.client_secret_rotated", client_id=a.client_id, overlap=overlap)
    return result
