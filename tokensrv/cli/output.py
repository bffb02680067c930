"""How the admin commands print their answer: JSON for scripts (--json), else a table, a view of one
record (`show`) or the status summary on standard output; progress on standard error, so stdout
stays the answer. People read times as ISO 8601 UTC; JSON keeps epoch seconds (scripts compare them)."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# the fields that hold a time in epoch seconds (created_at, rotate_after... of clients, users, keys)
_TIMES = ("_at", "rotate_after")


def emit(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    elif isinstance(result, list):
        print_table(result)
    else:  # a command's answer (client add, rotate-secret...) read by a person: its times as ISO
        print(json.dumps(_readable(result), indent=2))


def _readable(value: Any, name: str = "") -> Any:
    """`value` with each time field (epoch seconds, as JSON keeps them) written as ISO 8601 UTC."""
    if isinstance(value, dict):
        return {k: _readable(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return _cell(value, name) if _is_time(value, name) else value


def _is_time(value: Any, column: str) -> bool:
    return column.endswith(_TIMES) and isinstance(value, int) and not isinstance(value, bool)


# what `client list` shows of each client_view (direct or through --server alike)
CLIENT_COLUMNS = ("client_id", "client_name", "type", "registered", "token_endpoint_auth_method", "grant_types",
                  "scopes", "audience", "first_party", "created_at")


def client_rows(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: view[k] for k in CLIENT_COLUMNS} for view in views]


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("(none)")
        return
    columns = list(rows[0])
    cells = [[_cell(row.get(c), c) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_view(record: dict[str, Any]) -> None:
    """One record (`client show`, `user show`) as `name: value` lines, names aligned."""
    width = max((len(name) for name in record), default=0)
    for name, value in record.items():
        print(f"{name.replace('_', ' ') + ':':<{width + 2}}{_cell(value, name)}".rstrip())


def _cell(value: Any, column: str = "") -> str:
    if _is_time(value, column):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        return "; ".join(_cell(v) for v in value)  # a user's passkeys
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, dict):  # a user's attributes, a passkey
        return ",".join(f"{k}={_cell(v, k)}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)


def print_status(s: dict[str, Any]) -> None:
    store = s["store"]
    print(f"store:   {store['url']} reachable, {store['latency_ms']} ms round trip")
    print(f"clients: {s['clients']}   users: {s['users']}")
    step = s["next_rotation_step"]
    when = None if step is None else _cell(step["due_at"], "due_at")
    print("next key rotation step: " + ("none planned" if step is None else
                                          f"{step['step']} at {when} (in {step['in_seconds']} s)"))
    for problem in s["key_problems"]:
        print(f"key problem: {problem}")
    print_table(s["keys"])


def progress(label: str) -> Callable[[int, int], None]:
    """A progress line on stderr: rewritten in place on a terminal, every tenth otherwise."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if tty:
            print(f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)
    return report
