"""The generated reference pages (docs/reference/: CLI, endpoints, keyspace; the configuration page
has its own tests in test_config_docs.py) are what scripts/docs_reference.py writes from the code and
openapi.yaml, and they name every command, option and operation there is."""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tokensrv.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ["docs/reference/cli.md", "docs/reference/endpoints.md", "docs/reference/keyspace.md"]


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", GENERATED)
def test_each_generated_page_is_what_the_tool_writes(name: str):
    done = subprocess.run([sys.executable, "scripts/docs_reference.py", "--check", name], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def commands(prog: str, parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every runnable command (a parser without subcommands) with its full name."""
    groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not groups:
        yield prog, parser
    for group in groups:
        for name, sub in group.choices.items():
            yield from commands(f"{prog} {name}", sub)


def test_every_command_and_option_of_the_parser_is_in_the_cli_reference():
    text = page("docs/reference/cli.md")
    found = list(commands("tokensrv", build_parser()))
    assert len(found) > 20
    for name, parser in found:
        section = text.partition(f"`{name}`\n")[2].partition("\n#")[0]
        assert section, f"docs/reference/cli.md has no section for {name}"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in section, f"{name} {option} is not in its section"


def test_a_new_option_makes_the_cli_reference_stale(monkeypatch: pytest.MonkeyPatch):
    """The check catches drift: a parser with one more option no longer matches the page."""
    docs = tool()
    assert docs.stale(["docs/reference/cli.md"]) == {}

    def grown() -> argparse.ArgumentParser:
        parser = build_parser()
        parser.add_argument("--colour", help="a flag the page does not know")
        return parser

    # the module, not tokensrv.cli.main the attribute: tokensrv.cli exports a function named main
    monkeypatch.setattr(sys.modules["tokensrv.cli.main"], "build_parser", grown)
    assert "--colour" in docs.stale(["docs/reference/cli.md"])["docs/reference/cli.md"]


def test_every_operation_of_openapi_yaml_is_on_the_endpoints_page():
    spec = yaml.safe_load(page("openapi.yaml"))
    text = page("docs/reference/endpoints.md")
    for path, item in spec["paths"].items():
        for method in ("get", "post", "put", "delete", "patch"):
            if method in item:
                assert f"### `{method.upper()} {path}`" in text
    for name in spec["components"]["schemas"]:
        assert f"### {name}\n" in text


def test_every_key_prefix_of_the_keyspace_module_is_on_the_keyspace_page():
    text = page("docs/reference/keyspace.md")
    source = page("tokensrv/store/keyspace.py")
    prefixes = set(re.findall(r'PREFIX \+ "([a-z-]+)[:"]', source))
    assert len(prefixes) > 10
    for prefix in prefixes:
        assert f"tokensrv:{prefix}" in text, prefix
