"""`tokensrv user import FILE`: users from a CSV (username,password[,email,roles,groups], then with a
header row any column named by it is an attribute: department, given_name...), their passwords
hashed in parallel in the password pool. Each bad row is reported by its line number; a password
never appears in a message (a short one is reported by length rule only)."""
from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tokensrv.admin.operations import AdminError, add_user
from tokensrv.oauth import Provider
from tokensrv.observability.logs import audit

COLUMNS = "username,password[,email,roles,groups]"
FIXED = ("username", "password", "email", "roles", "groups")


@dataclass(frozen=True)
class Row:
    line: int
    username: str
    password: str
    email: str | None
    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()


def read_rows(lines: Iterable[str]) -> tuple[list[Row], list[str]]:
    """The well-formed rows, and one message per malformed one. A first row naming the columns is
    a header (its sixth column on name attributes); blank lines are skipped; roles and groups are
    separated by spaces or semicolons; an empty attribute cell is no attribute."""
    rows: list[Row] = []
    problems: list[str] = []
    seen: dict[str, int] = {}  # rows are added concurrently: file order decides between duplicates
    names: list[str] = []  # attribute columns, as the header names them
    reader = csv.reader(lines)
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if line == 1 and cells[0].strip().lower() == "username":
                names = [cell.strip() for cell in cells[len(FIXED):]]
                continue
            if not 2 <= len(cells) <= len(FIXED) + len(names):
                problems.append(f"line {line}: expected {COLUMNS}{',ATTRIBUTES' if names else ''}, found "
                                f"{len(cells)} columns")
                continue
            email = cells[2].strip() or None if len(cells) > 2 else None
            roles, groups = (_words(cells[i]) if len(cells) > i else () for i in (3, 4))
            attributes = tuple(sorted((k, v) for k, v in zip(names, cells[len(FIXED):], strict=False) if v))
            username = cells[0].strip()
            if username.casefold() in seen:
                problems.append(f"line {line}: user {username!r} appears again (first on line "
                                f"{seen[username.casefold()]})")
                continue
            seen[username.casefold()] = line
            rows.append(Row(line, username, cells[1], email, roles, groups, attributes))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    return rows, problems


def _words(cell: str) -> tuple[str, ...]:
    return tuple(word for word in re.split(r"[;\s]+", cell) if word)


async def import_users(p: Provider, rows: list[Row], progress: Callable[[int, int], None]) -> list[str]:
    """Add every row's user (concurrently: the pool's threads hash in parallel); returns the failures."""
    async def add(row: Row) -> str | None:
        try:
            user = await add_user(p, row.username, row.password, row.email, row.roles, row.groups,
                                  dict(row.attributes))
        except AdminError as exc:
            return f"line {row.line}: {exc}"
        audit("admin.user_added", sub=user["sub"], source="import")
        return None

    failures: list[str] = []
    for done, outcome in enumerate(asyncio.as_completed([add(row) for row in rows]), start=1):
        problem = await outcome
        if problem is not None:
            failures.append(problem)
        progress(done, len(rows))
    return failures


def by_line(problems: list[str]) -> list[str]:
    """Messages in file order (each starts with "line N:")."""
    return sorted(problems, key=lambda text: int(text.split()[1].rstrip(":")))
