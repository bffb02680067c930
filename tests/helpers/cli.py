"""The CLI as a user runs it against a live server: its JSON output, its one-line errors, a plain HTTP post."""
from __future__ import annotations

import argparse
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any


def http_post(url: str, form: dict[str, str], client_id: str | None = None, secret: str | None = None
              ) -> tuple[int, dict[str, Any]]:
    """What `curl -u id:secret -d k=v URL` does."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    if client_id is not None:
        credentials = f"{client_id}:{secret}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def assert_one_line_error(result, *words: str) -> None:
    assert result.returncode != 0, result.args
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (result.args, result.stderr)
    assert "Traceback" not in result.stderr and lines[0].startswith("tokensrv")
    for word in words:
        assert word in lines[0], lines[0]


def cli_json(server, *args: str, input: str | None = None) -> Any:
    return json.loads(server.cli(*args, "--json", input=input).stdout)


def parsers(parser: argparse.ArgumentParser, path: str = "tokensrv") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command, depth first, by its command line ("tokensrv client add")."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}")
