"""What the CLI's commands share with its parser: the one-line CLIError, settings from the parsed
flags, a password from the terminal or standard input. Imports only the settings, so that the
parser (main.py), the admin commands (commands.py) and the server (serve.py) each depend on it and
never on each other's modules in both directions."""
from __future__ import annotations

import argparse
import getpass
import sys

from tokensrv.config import ConfigError, Settings, load_settings


class CLIError(Exception):
    """One line on stderr and exit status 1."""


# the settings a command's flags may give (--redis-url for TOKENSRV_REDIS_URL...)
SETTING_FLAGS = ("redis_url", "keys_dir", "host", "port", "issuer", "workers", "admin_host", "admin_port")


def settings_from(args: argparse.Namespace) -> Settings:
    given = {name: getattr(args, name, None) for name in SETTING_FLAGS}
    for name, value in given.items():
        if isinstance(value, str) and not value.strip():  # not "unset": the default would be used silently
            raise ConfigError(f"--{name.replace('_', '-')} is empty: give a value, or leave the flag out")
    return load_settings(**given)


def as_given(message: str, args: argparse.Namespace) -> str:
    """An error about a setting names it as the user gave it: by its flag when it came from one
    (`--port abc`), else by its environment variable."""
    for name in SETTING_FLAGS:
        if getattr(args, name, None) is not None:
            message = message.replace(f"TOKENSRV_{name.upper()}", f"--{name.replace('_', '-')}")
    return message


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        try:
            password = sys.stdin.readline().rstrip("\r\n")
        except UnicodeDecodeError:
            raise CLIError("the password on standard input is not valid text") from None
        if not password:
            raise CLIError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CLIError("no terminal to ask for the password: use --password-stdin")
    first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
    if first != second:
        raise CLIError("the passwords differ")
    return first


def read_token(args: argparse.Namespace) -> str:
    token = sys.stdin.readline() if args.token == "-" else args.token
    token = token.strip()
    if not token:
        raise CLIError("no token given (pass - and the token on standard input)")
    return token
