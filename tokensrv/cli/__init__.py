"""The `tokensrv` command: the parser and main (main.py), the admin commands (commands.py over
admin.py), `serve` with its workers and the embedded Valkey (serve.py, embedded.py), `login --device`
(device_login.py) and `user import` (user_import.py). console.py is what they share.

The console script is `tokensrv = tokensrv.cli:main`: main is re-exported here."""
from tokensrv.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
