"""The `tokensrv` command: build_parser and main (main.py), the admin commands with their parsers
(commands.py over tokensrv.admin.operations, output.py prints their answers), `serve` with its workers and the embedded
Valkey (serve.py, embedded.py), `login --device` (device_login.py) and `user import` (user_import.py).
console.py and parsing.py are what they share.

The console script is `tokensrv = tokensrv.cli:main`: main is re-exported here."""
from tokensrv.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
