"""Command-line parsing: usage mistakes are one line that says what to do."""
from __future__ import annotations

import pytest

from tokensrv.cli.main import build_parser
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
