"""Writes the generated parts of the documentation site from what they describe, between each page's
`<!-- generated:start -->` and `<!-- generated:end -->` lines: `make docs-reference`. With --check it
only says which pages differ (exit 1), as tests/unit/test_config_docs.py and test_reference_docs.py do.

- docs/reference/configuration.md: the settings, from their declarations in tokensrv/config/;
- docs/reference/cli.md: every command and option, from tokensrv.cli.main.build_parser();
- docs/reference/endpoints.md: every operation, from openapi.yaml;
- docs/reference/keyspace.md: the key layout, from tokensrv/store/keyspace.py's docstring.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- generated:start -->\n", "<!-- generated:end -->\n"


def configuration() -> str:
    from tokensrv.config import markdown_table
    return markdown_table()


# ---- the command line ----

def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """The parser's subcommands in declaration order: name -> (help, parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def usage(prog: str, parser: argparse.ArgumentParser) -> str:
    """A one-line synopsis, independent of the terminal's width (argparse wraps to it)."""
    words = [prog]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        word = argument_form(action)
        words.append(word if action.required else f"[{word}]")
        if isinstance(action, argparse._AppendAction):
            words[-1] += "..."
    return " ".join(words)


def argument_form(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    if isinstance(action, argparse.BooleanOptionalAction):  # --require-mfa and --no-require-mfa
        return "|".join(action.option_strings)
    flag = action.option_strings[-1]
    if action.nargs == 0:
        return flag
    if action.choices:
        return f"{flag} {'|'.join(map(str, action.choices))}"
    return f"{flag} {action.metavar or action.dest.upper()}"


def setting_help(dest: str) -> str:
    """A flag without help of its own that sets a setting (`serve --port`) means what the setting does."""
    from tokensrv.config import SETTINGS, env_name
    setting = SETTINGS.get(dest)
    return f"{setting.doc} (`{env_name(dest)}`)" if setting else ""


def argument_rows(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        meaning = (action.help or setting_help(action.dest)).replace("|", "\\|")
        if isinstance(action, argparse._AppendAction):
            meaning = (meaning + "; " if meaning else "") + "repeatable"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            meaning += f" (default `{action.default}`)"
        if action.required and action.option_strings:
            meaning = "required; " + meaning if meaning else "required"
        if isinstance(action, argparse.BooleanOptionalAction):
            yield f"| {' / '.join(f'`{o}`' for o in action.option_strings)} | {meaning} |\n"
            continue
        form = argument_form(action).replace("|", "\\|")
        aliases = "".join(f"`{o}` / " for o in action.option_strings[:-1])  # a short form (apply -f)
        yield f"| {aliases}`{form}` | {meaning} |\n"


def command_sections(prog: str, parser: argparse.ArgumentParser, level: int) -> Iterator[str]:
    children = subcommands(parser)
    if not children:
        yield f"```\n{usage(prog, parser)}\n```\n\n"
        rows = list(argument_rows(parser))
        if rows:
            yield "| argument | meaning |\n|---|---|\n" + "".join(rows) + "\n"
        return
    for name, (summary, sub) in children.items():
        yield f"{'#' * level} `{prog} {name}`\n\n"
        text = sub.description or summary
        if text:
            yield text[0].upper() + text[1:] + ".\n\n"
        yield from command_sections(f"{prog} {name}", sub, level + 1)


def cli() -> str:
    from tokensrv.cli.main import build_parser
    parser = build_parser()
    options = [row for row in argument_rows(parser)]
    head = "| option | meaning |\n|---|---|\n" + "".join(options) + "\n" if options else ""
    return head + "".join(command_sections("tokensrv", parser, 2))


# ---- the HTTP endpoints ----

METHODS = ("get", "post", "put", "delete", "patch")


def ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    found: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return resolve(spec, found)


def one_line(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def schema_link(schema: dict[str, Any]) -> str:
    name = ref_name(schema)
    if name:
        return f"[{name}](#{name.lower()})"
    kind = schema.get("type", "")
    return f"`{kind}`" if kind else ""


def content_cell(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    return "; ".join(f"`{media}` {schema_link(body.get('schema', {}))}".strip()
                     for media, body in content.items())


def operation(spec: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> Iterator[str]:
    yield f"### `{method.upper()} {path}`\n\n"
    if op.get("description"):
        yield one_line(op["description"]) + "\n\n"
    security = op.get("security")
    if security:
        schemes = [name for requirement in security for name in requirement] or []
        words = [f"`{name}`" for name in schemes] + (["none"] if {} in security else [])
        yield "Authentication: " + ", or ".join(words) + ".\n\n"
    params = [resolve(spec, p) for p in op.get("parameters", [])]
    if params:
        yield "| parameter | in | required | meaning |\n|---|---|---|---|\n"
        for p in params:
            required = "yes" if p.get("required") else "no"
            yield f"| `{p['name']}` | {p['in']} | {required} | {one_line(p.get('description', ''))} |\n"
        yield "\n"
    body = op.get("requestBody")
    if body:
        yield f"Request body: {content_cell(resolve(spec, body).get('content'))}.\n\n"
    yield "| status | meaning | body |\n|---|---|---|\n"
    for status, answer in op.get("responses", {}).items():
        resolved = resolve(spec, answer)
        yield f"| {status} | {one_line(resolved.get('description', ''))} | {content_cell(resolved.get('content'))} |\n"
    yield "\n"


def schema_rows(schema: dict[str, Any]) -> Iterator[str]:
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type", "")
        if "enum" in prop:
            kind += " " + ", ".join(f"`{value}`" for value in prop["enum"])
        if "const" in prop:
            kind += f" `{prop['const']}`"
        if "oneOf" in prop:
            kind = " or ".join(str(option.get("type", "")) for option in prop["oneOf"])
        mark = "yes" if name in required else ""
        yield f"| `{name}` | {one_line(kind)} | {mark} | {one_line(prop.get('description', ''))} |\n"


def schema_section(name: str, schema: dict[str, Any]) -> Iterator[str]:
    yield f"### {name}\n\n"
    if schema.get("description"):
        yield one_line(schema["description"]) + "\n\n"
    parts = [schema, *schema.get("allOf", [])]
    bases = [ref_name(part) for part in parts if ref_name(part)]
    if bases:
        yield "All of " + ", ".join(f"[{base}](#{str(base).lower()})" for base in bases) + ", and:\n\n"
    rows = [row for part in parts if not ref_name(part) for row in schema_rows(part)]
    if rows:
        yield "| member | type | required | meaning |\n|---|---|---|---|\n" + "".join(rows) + "\n"


def endpoints() -> str:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    out = [one_line(spec["info"]["description"]) + "\n\n", "## Operations\n\n"]
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                out.extend(operation(spec, path, method, item[method]))
    out.append("## Authentication schemes\n\n| name | scheme | meaning |\n|---|---|---|\n")
    for name, scheme in spec["components"]["securitySchemes"].items():
        out.append(f"| `{name}` | {scheme['scheme']} | {one_line(scheme.get('description', ''))} |\n")
    out.append("\n## Schemas\n\n")
    for name, schema in spec["components"]["schemas"].items():
        out.extend(schema_section(name, schema))
    return "".join(out)


# ---- the store's keys ----

def keyspace() -> str:
    tree = ast.parse((ROOT / "tokensrv/store/keyspace.py").read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    _, found, layout = doc.partition("Key layout")
    if not found:
        raise SystemExit("tokensrv/store/keyspace.py: its docstring has no 'Key layout' block")
    return "```\nKey layout" + layout.rstrip() + "\n```\n"


PAGES: dict[str, Callable[[], str]] = {
    "docs/reference/configuration.md": configuration,
    "docs/reference/cli.md": cli,
    "docs/reference/endpoints.md": endpoints,
    "docs/reference/keyspace.md": keyspace,
}


def with_generated(name: str, page: str, generated: str) -> str:
    """The page with `generated` between the markers (each on a line of its own)."""
    before, start, rest = page.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{name}: no {START.strip()} ... {END.strip()} lines")
    return before + START + generated + END + after


def stale(names: list[str]) -> dict[str, str]:
    """Each named page (every page without names) whose generated part differs: name -> new text."""
    found = {}
    for name in names or list(PAGES):
        if name not in PAGES:
            raise SystemExit(f"{name}: not a generated page (one of {', '.join(PAGES)})")
        page = (ROOT / name).read_text(encoding="utf-8")
        wanted = with_generated(name, page, PAGES[name]())
        if wanted != page:
            found[name] = wanted
    return found


def main(argv: list[str]) -> int:
    check = argv[:1] == ["--check"]
    changed = stale(argv[1:] if check else argv)
    for name, text in changed.items():
        if check:
            print(f"{name} is out of date: run `make docs-reference`")
        else:
            (ROOT / name).write_text(text, encoding="utf-8")
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
