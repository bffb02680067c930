"""`tokensrv serve | keys | client | user | token | status`: flags and TOKENSRV_* -> Settings.

Each command group registers its own parser next to its handlers (commands.py: keys, client, user,
token, status; serve.py; device_login.py: login); build_parser assembles them and main dispatches.
`serve --workers N` sets PROMETHEUS_MULTIPROC_DIR before the workers make their metrics
(tokensrv/observability/metrics.py picks their storage then, not at import, so importing the server
here to build its parser is early enough).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from tokensrv.cli import apply, commands, device_login, remote, serve, user_claims
from tokensrv.cli.console import CLIError, as_given, settings_from
from tokensrv.cli.parsing import Commands, Parser
from tokensrv.config import ConfigError, Settings
from tokensrv.observability.logs import error_line
from tokensrv.version import __version__

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


# every command group's parser, next to its handlers, in the order --help lists them
GROUPS: tuple[Callable[[Commands[Any]], None], ...] = (
    serve.add_parser, commands.add_keys_parser, commands.add_client_parser, commands.add_user_parser,
    commands.add_token_parser, commands.add_status_parser, user_claims.add_claims_parser, apply.add_parser,
    device_login.add_parser)
# the admin commands: each takes --server and the admin client's flags (cli/remote.py); those
# without a route in the admin API refuse them (cli/remote_commands.py)
REMOTE_GROUPS = ("keys", "client", "user", "token", "status")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tokensrv", description="OAuth 2.0 / OpenID Connect token server")
    parser.add_argument("--version", action="version", version=f"tokensrv {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_group in GROUPS:
        add_group(subparsers)
    for command in remote.leaves(subparsers.choices[name] for name in REMOTE_GROUPS):
        remote.add_flags(command)
    return parser


def not_utf8(argv: Sequence[str]) -> str | None:
    """The error line for the first argument that is not UTF-8 (Python keeps its bytes as lone
    surrogates, which no output can print: the error naming it would be a traceback); else None."""
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return error_line(f"argument {position} is not valid UTF-8: {os.fsencode(arg)!r}", "text")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    if (bad := not_utf8(sys.argv[1:] if argv is None else argv)) is not None:
        print(bad, file=sys.stderr)
        return 2  # as argparse's usage errors
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            args.own_metrics_dir = prepare_metrics_dir(settings_from(args))
            return serve.serve(args)
        if args.command == "login":  # an HTTP client of the server: no store, no keys
            return device_login.login(args)
        if args.command == "claims" and args.action == "check":  # a file: no store, no keys
            return user_claims.claims_check(args)
        if args.command == "apply":  # a plan, then acts (its output is its own)
            return apply.run(args)
        return commands.run_command(args)
    except (ConfigError, CLIError) as exc:
        # the server's failures are in its log format (JSON by default), the other commands' plain
        log_format = (os.environ.get("TOKENSRV_LOG_FORMAT") or "json") if args.command == "serve" else "text"
        print(error_line(as_given(str(exc), args), log_format), file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130


def prepare_metrics_dir(settings: Settings) -> str | None:
    """Several workers share their metrics through files: a fresh folder unless the operator chose
    one. Returns the folder if it is ours (the supervisor removes it at exit)."""
    if settings.workers <= 1 or os.environ.get(METRICS_DIR):
        return None
    os.environ[METRICS_DIR] = tempfile.mkdtemp(prefix="tokensrv-metrics-")
    return os.environ[METRICS_DIR]


if __name__ == "__main__":
    sys.exit(main())
