"""What every command group's parser shares: the one-line usage errors (Parser) and the flags of a
command that reads the settings (add_command). Each group registers its commands next to its
handlers (commands.py, serve.py, device_login.py); cli/main.py build_parser assembles them."""
from __future__ import annotations

import argparse
from typing import Any, NoReturn

# what add_subparsers returns: argparse has no public name for it
Commands = argparse._SubParsersAction


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too (argparse would print the whole usage first); --help still
    shows the usage. Subcommand parsers inherit this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # no abbreviations: `--password SECRET` must not pass for `--password-stdin`
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        unrecognized = "unrecognized arguments: "
        if message.startswith(unrecognized):  # name the options, never echo values (a password?)
            flags = [word.partition("=")[0] for word in message[len(unrecognized):].split() if word.startswith("-")]
            if flags and all(flag.startswith("--") for flag in flags):  # surely flags, not values
                self.exit(2, f"{self.prog}: error: unknown flag {', '.join(flags)} (see --help)\n")
            message = unrecognized + (" ".join(flags) or "(values not shown)")
        if message.startswith((unrecognized, "the following arguments are required")):
            # argparse reads a value that starts with "-" (one kid in 64 does) as an option
            message += "; a value that starts with '-' goes after '--'"
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_command(commands: Commands[Any], name: str, help: str) -> argparse.ArgumentParser:
    """A command that reads the settings: the store and keys folder flags, and --json."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
    sub.add_argument("--redis-url", help="the store (TOKENSRV_REDIS_URL)")
    sub.add_argument("--keys-dir", help="the signing-key folder (TOKENSRV_KEYS_DIR)")
    sub.add_argument("--json", action="store_true", help="print JSON for scripts")
    return sub


def add_group(commands: Commands[Any], name: str, help: str) -> Commands[Any]:
    """A command of subcommands (`tokensrv keys list`): one of them is required."""
    group: Commands[Any] = commands.add_parser(name, help=help).add_subparsers(dest="action", required=True)
    return group
