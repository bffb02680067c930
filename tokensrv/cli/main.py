"""`tokensrv serve | keys | client | user | token | status`: flags and TOKENSRV_* -> Settings.

Kept light on purpose: it imports only argparse and the settings, so a command starts quickly; the
admin commands live in commands.py. `serve --workers N` sets PROMETHEUS_MULTIPROC_DIR before the
workers make their metrics (tokensrv/observability/metrics.py picks their storage then, not at import).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, NoReturn

from tokensrv.cli.client_flags import CLIENT_FLAGS
from tokensrv.cli.console import CLIError, settings_from
from tokensrv.config import ConfigError, Settings
from tokensrv.observability.logs import error_line
from tokensrv.version import __version__

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too (argparse would print the whole usage first); --help still
    shows the usage. Subcommand parsers inherit this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # no abbreviations: `--password SECRET` must not pass for `--password-stdin`
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        unrecognized = "unrecognized arguments: "
        if message.startswith(unrecognized):  # name the options, never echo values (a password?)
            flags = [word for word in message[len(unrecognized):].split() if word.startswith("-")]
            message = unrecognized + (" ".join(flags) or "(values not shown)")
        if message.startswith((unrecognized, "the following arguments are required")):
            # argparse reads a value that starts with "-" (one kid in 64 does) as an option
            message += "; a value that starts with '-' goes after '--'"
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tokensrv", description="OAuth 2.0 / OpenID Connect token server")
    parser.add_argument("--version", action="version", version=f"tokensrv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        sub.add_argument("--redis-url", help="the store (TOKENSRV_REDIS_URL)")
        sub.add_argument("--keys-dir", help="the signing-key folder (TOKENSRV_KEYS_DIR)")
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        return sub

    serve = command("serve", "run the server")
    serve.add_argument("--host")
    serve.add_argument("--port")
    serve.add_argument("--issuer")
    serve.add_argument("--workers")
    serve.add_argument("--embedded-store", metavar="DIR",
                       help="start the embedded Valkey with its data in DIR (what `make run` does)")

    keys = commands.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    command("list", "list the keys and their states", keys)
    command("init", "create the first keys if keys/ has none", keys)
    command("rotate", "start signing with the next key as soon as caches allow", keys)
    command("revoke", "take a compromised key out of the JWKS and signing now", keys).add_argument(
        "kid", metavar="KID")

    client = commands.add_parser("client", help="OAuth clients").add_subparsers(dest="action", required=True)
    add = command("add", "register a client; prints its secret once", client)
    add.add_argument("--id", required=True, dest="client_id")
    for field, (flag, options) in CLIENT_FLAGS.items():
        add.add_argument(flag, dest=field, **options)
    mint = command("token", "mint an initial access token for dynamic registration (RFC 7591, "
                   "TOKENSRV_REGISTRATION=on); prints it once", client)
    mint.add_argument("--ttl", default="1h", help="how long it lives: seconds, or a number with s, m, h or d "
                      "(default 1h, at most 30d)")
    mint.add_argument("--uses", type=int, default=1, help="how many clients it may register (default 1)")
    command("list", "list clients", client)
    command("show", "show one client", client).add_argument("client_id", metavar="ID")
    command("remove", "remove a client", client).add_argument("client_id", metavar="ID")

    user = commands.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    uadd = command("add", "add a user; prints its sub", user)
    uadd.add_argument("username", metavar="USERNAME")
    uadd.add_argument("--email")
    uadd.add_argument("--role", action="append", default=[], dest="roles")
    uadd.add_argument("--password-stdin", action="store_true")
    passwd = command("passwd", "set a password; ends the user's sessions", user)
    passwd.add_argument("username", metavar="USERNAME")
    passwd.add_argument("--password-stdin", action="store_true")
    command("list", "list users", user)
    imp = command("import", "add users from a CSV file: username,password[,email,roles] "
                  "(roles separated by spaces or semicolons; a header row is allowed)", user)
    imp.add_argument("file", metavar="FILE")
    for name, text in (("show", "show a user"), ("disable", "disable a user and end its sessions"),
                       ("enable", "enable a user"), ("remove", "remove a user"),
                       ("revoke", "sign a user out everywhere")):
        command(name, text, user).add_argument("username", metavar="USERNAME")
    token = commands.add_parser("token", help="look at or revoke one token (no HTTP: the store "
                                "and keys/ directly)").add_subparsers(dest="action", required=True)
    for name, text in (("introspect", "show what introspection says about a token"),
                       ("revoke", "revoke a token (a refresh token: its whole family)")):
        command(name, text, token).add_argument(
            "token", metavar="TOKEN", help="the token, or - to read it from standard input (prefer -: "
            "a token on the command line stays in the shell history and is visible in ps)")
    command("status", "the store, the keys, the next rotation step, counts of clients and users")
    device = commands.add_parser("login", help="sign in from this terminal (device grant, RFC 8628); "
                                 "prints an access token", description="sign in with a browser elsewhere; "
                                 "the token goes to standard output only, nothing is written to disk")
    device.add_argument("--device", action="store_true", required=True, help="the device flow (the only one)")
    device.add_argument("--issuer", help="the server (TOKENSRV_ISSUER, else http://127.0.0.1:8080)")
    device.add_argument("--client-id", default="tokensrv-cli", help="a public client with the device_code grant")
    device.add_argument("--scope")
    device.add_argument("--json", action="store_true", help="print the whole token response")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            args.own_metrics_dir = prepare_metrics_dir(settings_from(args))
            from tokensrv.cli.serve import serve
            return serve(args)
        if args.command == "login":  # an HTTP client of the server: no store, no keys
            from tokensrv.cli.device_login import login
            return login(args)
        from tokensrv.cli.commands import run_command
        return run_command(args)
    except (ConfigError, CLIError) as exc:
        # the server's failures are in its log format (JSON by default), the other commands' plain
        log_format = (os.environ.get("TOKENSRV_LOG_FORMAT") or "json") if args.command == "serve" else "text"
        print(error_line(str(exc), log_format), file=sys.stderr)
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
