"""The layout of the tests themselves: a test module imports only tests.helpers (besides the package and
its conftest fixtures), and every test carries the marker of its kind, so `-m "not e2e"` means it."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent

# Run inside a `pytest --collect-only`: what was selected, what `-m` deselected, with the markers of each.
PROBE = '''
import json, os

selected, deselected = [], []

def pytest_deselected(items):
    deselected.extend(items)

def pytest_collection_finish(session):
    def markers(items):
        return {item.nodeid: sorted({m.name for m in item.iter_markers()}) for item in items}
    with open(os.environ["LAYOUT_PROBE_OUT"], "w") as out:
        json.dump({"selected": markers(session.items), "deselected": markers(deselected)}, out)
'''


def imports_of_tests(path: Path, source: str | None = None) -> list[str]:
    """The modules of tests/ that `path` imports (relative imports resolved against its package)."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found += [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
    return [name for name in found if name == "tests" or name.startswith("tests.") or name == "conftest"]


def test_test_modules_import_only_the_helpers() -> None:
    """Helpers shared between tests live in tests/helpers: no test module, conftest or helper imports
    a test module or a conftest (a fixture comes from a conftest by name, never by import)."""
    wrong = {str(path.relative_to(REPO)): bad for path in sorted(TESTS.rglob("*.py"))
             if (bad := [name for name in imports_of_tests(path)
                         if name != "tests.helpers" and not name.startswith("tests.helpers.")])}
    assert not wrong, wrong


def test_the_layout_check_sees_relative_and_conftest_imports() -> None:
    source = "from .test_fuzz import FUZZ\nfrom tests.conftest import x\nfrom . import helpers\nimport conftest\n"
    assert imports_of_tests(TESTS / "security" / "test_example.py", source) == [
        "tests.security.test_fuzz", "tests.conftest", "tests.security.helpers", "conftest"]


def test_every_test_carries_the_marker_of_its_kind(tmp_path: Path) -> None:
    """Collected with `-m "not e2e"`: every test under tests/e2e (and every other test that starts real
    servers) is deselected as e2e, every test under tests/integration is marked integration, and no
    test is both."""
    (tmp_path / "layout_probe.py").write_text(PROBE)
    out = tmp_path / "collected.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
           "LAYOUT_PROBE_OUT": str(out)}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "layout_probe",
                           "-m", "not e2e", "tests"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    collected = json.loads(out.read_text())
    selected, deselected = collected["selected"], collected["deselected"]
    assert selected and deselected
    assert not [node for node in selected if node.startswith("tests/e2e/") or "e2e" in selected[node]]
    assert all("e2e" in markers for markers in deselected.values())
    assert any(node.startswith("tests/e2e/") for node in deselected)
    everything = {**selected, **deselected}
    assert not [node for node, markers in everything.items()
                if node.startswith("tests/integration/") and "integration" not in markers]
    assert not [node for node, markers in everything.items() if {"e2e", "integration"} <= set(markers)]
