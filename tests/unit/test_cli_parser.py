"""The `tokensrv` command line is a contract (docs/ and scripts use it): every command's flags, their
help and the `--help` text stay as recorded in cli_parser.json unless a change means to alter them.

After an intended change: `.venv/bin/python -m tests.unit.test_cli_parser` rewrites the snapshot;
review its diff like any other change of the CLI."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import parsers
from tokensrv.cli.main import build_parser

SNAPSHOT = Path(__file__).with_name("cli_parser.json")
# argparse wraps --help to the terminal's width: a fixed one, so the text does not depend on who runs it
WIDTH = "100"


def describe(action: argparse.Action) -> dict[str, Any]:
    """What parsing and --help make of one argument (a subcommand list by its commands' help)."""
    described = {"kind": type(action).__name__, "option_strings": action.option_strings, "dest": action.dest,
                 "nargs": action.nargs, "const": action.const, "default": action.default,
                 "type": getattr(action.type, "__name__", action.type), "required": action.required,
                 "help": action.help, "metavar": action.metavar,
                 "choices": list(action.choices) if action.choices is not None else None}
    if isinstance(action, argparse._SubParsersAction):
        described["commands"] = {choice.dest: choice.help for choice in action._choices_actions}
    return described


def snapshot() -> dict[str, Any]:
    os.environ["COLUMNS"] = WIDTH
    return {path: {"class": type(parser).__name__, "allow_abbrev": parser.allow_abbrev,
                   "description": parser.description, "help": parser.format_help(),
                   "arguments": [describe(action) for action in parser._actions]}
            for path, parser in parsers(build_parser())}


def test_every_command_parses_and_helps_as_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", WIDTH)
    recorded = json.loads(SNAPSHOT.read_text())
    current = json.loads(json.dumps(snapshot()))  # tuples as lists, as in the file
    assert sorted(current) == sorted(recorded)
    for path in recorded:
        assert current[path] == recorded[path], path


def test_every_help_exits_zero_with_the_recorded_text(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", WIDTH)
    recorded = json.loads(SNAPSHOT.read_text())
    for path, entry in recorded.items():
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args([*path.split()[1:], "--help"])
        assert exited.value.code == 0, path
        assert capsys.readouterr().out == entry["help"], path


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1) + "\n")
