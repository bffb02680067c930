"""Command-line parsing: usage mistakes are one line that says what to do."""
from __future__ import annotations

import argparse

import pytest

from tests.helpers.cli import parsers
from tokensrv.cli.main import build_parser, main
from tokensrv.version import __version__


def test_a_value_read_as_an_option_gets_a_hint_about_the_double_dash(capsys):
    """A kid is base64url: one in 64 starts with "-" and argparse takes it for an option."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["keys", "revoke", "-Abc"])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "goes after '--'" in error
    assert build_parser().parse_args(["keys", "revoke", "--", "-Abc"]).kid == "-Abc"


def test_client_add_takes_dpop_bound():
    parsed = build_parser().parse_args(["client", "add", "--id", "svc", "--dpop-bound"])
    assert parsed.dpop_bound_access_tokens is True
    assert build_parser().parse_args(["client", "add", "--id", "svc"]).dpop_bound_access_tokens is False


def test_version_prints_the_servers_version(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"tokensrv {__version__}\n"


def test_every_argument_of_every_command_has_help():
    missing = [f"{path} {action.option_strings or action.dest}" for path, parser in parsers(build_parser())
               for action in parser._actions
               if not action.help and not isinstance(action, argparse._SubParsersAction)]
    assert missing == []


@pytest.mark.parametrize("args", [["client", "list", "--bogus"], ["client", "add", "--id", "x", "--bogus=s3cret"],
                                  ["user", "update", "ann", "--unset-emial"]])
def test_an_unknown_flag_is_named_in_one_line_without_its_value(capsys, args):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(args)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"unknown flag {args[-1].partition('=')[0]} " in error
    assert "s3cret" not in error


def test_a_bad_setting_is_named_as_the_user_gave_it(capsys, monkeypatch):
    monkeypatch.setenv("TOKENSRV_LOG_FORMAT", "text")
    assert main(["serve", "--port", "abc"]) == 2
    error = capsys.readouterr().err
    assert "--port must be a whole number" in error and "TOKENSRV_PORT" not in error
    monkeypatch.setenv("TOKENSRV_PORT", "abc")
    assert main(["serve"]) == 2
    assert "TOKENSRV_PORT must be a whole number" in capsys.readouterr().err
