"""`tokensrv apply -f FILE [--dry-run] [--prune] [--json]`: make the store's clients, users and claim
rules match a declared file (tokensrv/admin/declared*.py); `apply --print-schema`: the file's JSON
Schema, for editors. Errors are one line each, `FILE:LINE:COLUMN: path: why`, all of them, exit 1,
nothing changed. The plan is printed first; new clients' generated secrets once, at the end."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from tokensrv.admin.declared import Declared, read_declared, schema_text
from tokensrv.admin.declared_apply import Outcome, apply_plan, outcome_view
from tokensrv.admin.declared_plan import Plan, Step, make_plan
from tokensrv.admin.declared_yaml import MAX_FILE, FileProblems, Problem
from tokensrv.cli.commands import admin_provider
from tokensrv.cli.console import CLIError, as_given, settings_from
from tokensrv.cli.parsing import Commands, add_command
from tokensrv.config import Settings
from tokensrv.observability.logs import setup_logging

log = logging.getLogger("tokensrv")


def add_parser(commands: Commands[Any]) -> None:
    apply = add_command(commands, "apply", "make clients, users and claim rules match a file (YAML or JSON); "
                        "prints the plan, then what it did")
    apply.add_argument("-f", "--file", metavar="FILE", help="the declared configuration (see --print-schema)")
    apply.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    apply.add_argument("--prune", action="store_true", help="remove the clients and users an earlier apply "
                       "created or adopted that the file no longer names (never others)")
    apply.add_argument("--print-schema", action="store_true", help="print the file's JSON Schema and exit")


def run(args: argparse.Namespace) -> int:
    if args.print_schema:
        print(schema_text(), end="")
        return 0
    if not args.file:
        raise CLIError("give the file with -f FILE (or --print-schema)")
    settings = settings_from(args)
    setup_logging(settings.log_format, logger="tokensrv")  # audit lines to stderr, the plan on stdout
    return apply_path(settings, args.file, args.prune, args.dry_run, text=not args.json,
                      name_setting=lambda message: as_given(message, args))


def apply_path(settings: Settings, path: str, prune: bool = False, dry_run: bool = False, text: bool = True,
               name_setting: Callable[[str], str] = str, serving: bool = False) -> int:
    """Read, check, plan, act; errors one line each on stderr. The exit status. `serving` (serve
    --apply): a server's output is a log, so a new client's generated secret is not shown there (its
    secret_env gives one; else `tokensrv client rotate-secret` does)."""
    try:
        declared = read_declared(_read(path))
        view, status = asyncio.run(apply_file(settings, declared, prune, dry_run, text, serving))
    except FileProblems as exc:
        for problem in exc.problems:
            print(f"tokensrv: {problem.render(path)}", file=sys.stderr)
        return 1
    except CLIError as exc:
        print(f"tokensrv: error: {name_setting(str(exc))}", file=sys.stderr)
        return 1
    except RedisError as exc:
        print(f"tokensrv: error: the store failed ({type(exc).__name__}); nothing was changed", file=sys.stderr)
        return 1
    if not text:
        print(json.dumps(view))
    return status


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as source:
            raw = source.read(MAX_FILE + 1)
    except OSError as exc:
        raise FileProblems([Problem(0, 0, "", f"cannot read it ({exc.strerror})")]) from None
    return raw


async def apply_file(settings: Settings, declared: Declared, prune: bool, dry_run: bool,
                     text: bool = True, serving: bool = False) -> tuple[dict[str, Any], int]:
    """Plan, print, act: (the JSON view, the exit status). Also `serve --apply FILE`."""
    async with admin_provider(settings) as p:
        plan = await make_plan(p, declared, prune)
        if text:
            print_plan(plan)
        if dry_run or not plan.changes:
            if text:
                print("Nothing to change." if not plan.changes else "Dry run: nothing was changed.")
            return outcome_view(plan, None), 0
        outcome = await apply_plan(p, plan)
    if serving and outcome.secrets:  # a server's output is a log: its new clients' secrets are not shown
        log.warning("new clients' secrets not shown; get one with `tokensrv client rotate-secret ID`",
                    extra={"fields": {"clients": sorted(outcome.secrets)}})
        outcome = dataclasses.replace(outcome, secrets={})
    if text:
        print_outcome(outcome)
    return outcome_view(plan, outcome), 0 if outcome.failure is None else 1


_LABEL = {"kept": "not in the file (kept; --prune removes)"}


def print_plan(plan: Plan) -> None:
    for step in plan.steps:
        print(f"{_step_label(step)}: {_LABEL.get(step.action, step.action)}"
              + (" (adopted: --prune may remove it later)" if step.adopt and step.action != "create" else ""))
        for name, (old, new) in step.fields.items():
            print(f"    {name}: {_shown(new)}" if step.action == "create" else
                  f"    {name}: {_shown(old)} -> {_shown(new)}")
    counts = plan.summary()
    print(f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['remove']} to remove, "
          f"{counts['unchanged']} unchanged" + (f", {counts['kept']} not in the file" if counts["kept"] else "") + ".")


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def print_outcome(outcome: Outcome) -> None:
    print(f"Applied {len(outcome.done)} change(s).")
    if outcome.failure is not None:
        print(f"tokensrv: error: {outcome.failure}; not done: "
              + ", ".join(_step_name(s) for s in outcome.not_done) + " (run apply again to finish)", file=sys.stderr)
    if outcome.secrets:
        print("New client secrets, shown once (store them now):")
        for client_id, secret in outcome.secrets.items():
            print(f"    {client_id}: {secret}")


def _step_label(step: Step) -> str:
    return f"{step.kind} {step.name}" if step.name else step.kind  # the claims document has no name


def _step_name(step: Step) -> str:
    return f"{_step_label(step)} ({step.action})"
