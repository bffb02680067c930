"""What a user carries for the claims services read: `tokensrv user add --attr/--group`,
`tokensrv user update USERNAME`, `tokensrv claims check FILE` (the TOKENSRV_CLAIMS file,
checked as `tokensrv serve` checks it, without a store), and `tokensrv claims show/set/clear` (the
claim rules document in the store, which every instance follows: tokensrv/admin/claim_rules.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tokensrv.admin import claim_rules
from tokensrv.admin import operations as admin
from tokensrv.claims import ClaimsError, load_rules, parse_attribute
from tokensrv.cli.output import emit
from tokensrv.cli.parsing import Commands, add_command, add_group
from tokensrv.oauth import Provider
from tokensrv.observability.logs import audit


def attribute(text: str) -> tuple[str, str]:
    """argparse type of --attr KEY=VALUE: a bad one is a one-line usage error naming it."""
    try:
        return parse_attribute(text)
    except ClaimsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_claim_flags(add: argparse.ArgumentParser) -> None:
    """`user add`'s attributes and groups."""
    add.add_argument("--attr", action="append", default=[], type=attribute, dest="attributes", metavar="KEY=VALUE",
                     help="an attribute (repeatable); OIDC standard claims by their names: given_name, locale...")
    add.add_argument("--group", action="append", default=[], dest="groups", metavar="GROUP", help="repeatable")


def add_update_parser(user: Commands[Any]) -> None:
    update = add_command(user, "update", "change a user's email, roles, groups or attributes (never its sub); "
                         "the next token on every instance carries them")
    update.add_argument("username", metavar="USERNAME", help="the user's username")
    email = update.add_mutually_exclusive_group()
    email.add_argument("--email", help="a new email address")
    email.add_argument("--unset-email", action="store_true", help="remove the email address")
    for kind in ("role", "group"):
        update.add_argument(f"--add-{kind}", action="append", default=[], metavar=kind.upper(), help="repeatable")
        update.add_argument(f"--remove-{kind}", action="append", default=[], metavar=kind.upper(), help="repeatable")
    update.add_argument("--attr", action="append", default=[], type=attribute, dest="attributes",
                        metavar="KEY=VALUE", help="set an attribute (repeatable)")
    update.add_argument("--unset-attr", action="append", default=[], dest="unset_attributes", metavar="KEY",
                        help="remove an attribute (repeatable)")


async def user_update(p: Provider, a: argparse.Namespace) -> Any:
    change = admin.UserChange(
        email=a.email, unset_email=a.unset_email, add_roles=tuple(a.add_role), remove_roles=tuple(a.remove_role),
        add_groups=tuple(a.add_group), remove_groups=tuple(a.remove_group), attributes=tuple(a.attributes),
        unset_attributes=tuple(a.unset_attributes))
    user = await admin.update_user(p, a.username, change)
    # which fields changed, never their values (personal data)
    changed = sorted(k for k, v in vars(change).items() if v)
    audit("admin.user_updated", sub=user["sub"], changed=changed)
    return user


def add_claims_parser(commands: Commands[Any]) -> None:
    claims = add_group(commands, "claims", "custom scopes and claim mappings: the store's document, else the "
                       "TOKENSRV_CLAIMS file")
    check = claims.add_parser("check", help="check a claims file as `tokensrv serve` does at start",
                              description="check a claims file as `tokensrv serve` does at start")
    check.add_argument("file", metavar="FILE", help="the claims file (JSON)")
    check.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_command(claims, "show", "the claim rules in effect and where they come from (store, file or built-in)")
    put = add_command(claims, "set", "store a claims document (JSON, as the TOKENSRV_CLAIMS file): every "
                      "instance follows it at once, in place of the file")
    put.add_argument("file", metavar="FILE", help="the claims document (JSON)")
    add_command(claims, "clear", "remove the store's claims document: every instance falls back to the "
                "TOKENSRV_CLAIMS file, else the built-in scopes")


def claims_check(args: argparse.Namespace) -> int:
    """0 and what the file configures, or 1 and one line naming the file and the entry."""
    try:
        rules = load_rules(Path(args.file))
    except ClaimsError as exc:
        print(f"tokensrv: error: {exc}", file=sys.stderr)
        return 1
    emit({"scopes": {scope: [claim for claim, _ in pairs] for scope, pairs in rules.scopes.items()},
          "clients": {cid: sorted([*extra.static, *(c for c, _ in extra.from_user)])
                      for cid, extra in rules.clients.items()}}, args.json)
    return 0


async def claims_show(p: Provider, a: argparse.Namespace) -> Any:
    """--json: the document itself (what `claims set` takes back); else which scopes and claims."""
    effective = await claim_rules.effective_claim_rules(p)
    if a.json:
        return effective
    document = effective["document"]
    return {"source": effective["source"], "version": effective["version"],
            "scopes": {scope: list(claims) for scope, claims in document["scopes"].items()},
            "clients": {cid: list(claims) for cid, claims in document["clients"].items()}}


async def claims_set(p: Provider, a: argparse.Namespace) -> Any:
    try:  # read and bounded as the TOKENSRV_CLAIMS file is; errors name the file and the entry
        document = load_rules(Path(a.file)).document()
    except ClaimsError as exc:
        raise admin.AdminError(str(exc)) from None
    result = await claim_rules.set_claim_rules(p, document)
    if result["changed"]:
        audit("admin.claim_rules_set", version=result["version"], scopes=result["scopes"],
              clients=result["clients"])
    return result


async def claims_clear(p: Provider, a: argparse.Namespace) -> Any:
    result = await claim_rules.clear_claim_rules(p)
    if result["changed"]:
        audit("admin.claim_rules_cleared", version=result["version"])
    return result
