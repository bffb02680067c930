"""Writes the README's configuration table from the settings' declarations (tokensrv/config.py),
between its marker comments: `make docs-settings`. With --check it only says whether they differ
(exit 1), as tests/unit/test_config_docs.py does."""
from __future__ import annotations

import sys
from pathlib import Path

from tokensrv.config import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->\n", "<!-- settings:end -->\n"


def with_table(page: str, table: str) -> str:
    """The page with `table` between the markers (each on a line of its own)."""
    before, start, rest = page.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{README.name}: no {START.strip()} ... {END.strip()} lines")
    return before + START + table + END + after


def main(argv: list[str]) -> int:
    page = README.read_text(encoding="utf-8")
    wanted = with_table(page, markdown_table())
    if argv == ["--check"]:
        if wanted != page:
            print(f"{README.name}: the configuration table is out of date: run `make docs-settings`")
            return 1
        return 0
    if argv:
        raise SystemExit("usage: python scripts/docs_settings.py [--check]")
    if wanted != page:
        README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
