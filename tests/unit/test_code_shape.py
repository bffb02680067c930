"""The shape issue #22 set for the package: small modules, short functions (docs/architecture.md)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tokensrv"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
P90_FUNCTION_LINES = 20


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _function_lengths() -> dict[str, int]:
    lengths = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
                lengths[where] = node.end_lineno - node.lineno + 1
    return lengths


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these by concern: {long}"


def test_functions_are_short() -> None:
    lengths = _function_lengths()
    long = {where: n for where, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not long, f"over {MAX_FUNCTION_LINES} lines: {long}"
    ordered = sorted(lengths.values())
    assert ordered[int(len(ordered) * 0.9)] <= P90_FUNCTION_LINES
