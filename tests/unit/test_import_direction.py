"""Each tokensrv module imports the others in one direction: no two modules (or groups of them)
import each other, not even through an import inside a function. Imports under TYPE_CHECKING are
for annotations only and do not count."""
from __future__ import annotations

import ast
from pathlib import Path

import tokensrv

# tokensrv is a namespace package: the server's folder and tokensrv-verify's (verify/src/tokensrv)
FOLDERS = sorted({Path(entry) for entry in tokensrv.__path__ if Path(entry).is_dir()})


def module_names() -> dict[str, Path]:
    names = {}
    for folder in FOLDERS:
        for path in folder.rglob("*.py"):
            parts = ["tokensrv", *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            names[".".join(parts)] = path
    return names


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in modules)
                continue
            base = ".".join([*package[:len(package) - node.level + 1], node.module or ""]).strip(".") \
                if node.level else node.module or ""
            for alias in node.names:  # `from . import clients` imports the submodule
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_no_two_modules_import_each_other():
    assert cycles(import_graph()) == []


def test_the_checker_sees_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from .app import PROVIDER\n")
    assert len(runtime_imports(tree)) == 1
    tree = ast.parse("if TYPE_CHECKING:\n    from . import Provider\n")
    assert runtime_imports(tree) == []


def test_the_handlers_take_the_app_keys_from_appkeys_not_app():
    graph = import_graph()
    assert "tokensrv.server.app" in graph["tokensrv.cli.serve"]
    for handler in ("tokensrv.server.routes", "tokensrv.server.observe", "tokensrv.server.web.pages",
                    "tokensrv.server.web.login"):
        assert "tokensrv.server.app" not in graph[handler], handler
    assert not {"tokensrv.cli.commands", "tokensrv.cli.serve"} & graph["tokensrv.cli.console"]


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of what a module imports from outside tokensrv."""
    names = set()
    for node in runtime_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


# Each package and what it must not import at run time: the layers of docs/architecture.md, from
# the bottom (verify/, the downstream library) to the top (cli/). A lower layer never imports a
# higher one.
FORBIDDEN = {
    "tokensrv.verify": ("tokensrv.config", "tokensrv.errors", "tokensrv.passwords", "tokensrv.store",
                        "tokensrv.keys", "tokensrv.observability", "tokensrv.oauth", "tokensrv.admin",
                        "tokensrv.server", "tokensrv.cli"),
    "tokensrv.observability": ("tokensrv.store", "tokensrv.keys", "tokensrv.oauth", "tokensrv.admin",
                               "tokensrv.server", "tokensrv.cli"),
    "tokensrv.store": ("tokensrv.keys", "tokensrv.oauth", "tokensrv.admin", "tokensrv.server", "tokensrv.cli"),
    "tokensrv.keys": ("tokensrv.oauth", "tokensrv.admin", "tokensrv.server", "tokensrv.cli"),
    "tokensrv.oauth": ("tokensrv.admin", "tokensrv.server", "tokensrv.cli"),
    "tokensrv.admin": ("tokensrv.server", "tokensrv.cli"),
    "tokensrv.server": ("tokensrv.cli",),
}
# the protocol code takes plain values: HTTP is the server's (handlers thin over oauth/)
NO_HTTP = ("tokensrv.admin", "tokensrv.oauth", "tokensrv.keys", "tokensrv.observability")


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for name, targets in sorted(graph.items()):
        for package, forbidden in FORBIDDEN.items():
            if within(name, package):
                found += [f"{name} imports {t}" for t in sorted(targets) if any(within(t, f) for f in forbidden)]
    return found


def http_imports(modules: dict[str, Path]) -> list[str]:
    return [f"{name} imports aiohttp" for name, path in sorted(modules.items())
            if any(within(name, package) for package in NO_HTTP) and "aiohttp" in third_party_imports(path)]


def test_each_layer_imports_only_the_layers_below_it():
    assert layer_violations(import_graph()) == []


def test_the_protocol_code_does_not_import_aiohttp():
    assert http_imports(module_names()) == []


def test_the_layer_checks_see_a_violation(tmp_path):
    assert layer_violations({"tokensrv.verify.jws": {"tokensrv.server.app"}}) == [
        "tokensrv.verify.jws imports tokensrv.server.app"]
    assert layer_violations({"tokensrv.oauth.endpoints.token": {"tokensrv.cli.console"}}) != []
    assert layer_violations({"tokensrv.server.routes": {"tokensrv.oauth.endpoints.token"}}) == []
    handler = tmp_path / "token.py"
    handler.write_text("from aiohttp import web\n")
    assert http_imports({"tokensrv.oauth.endpoints.token": handler}) == [
        "tokensrv.oauth.endpoints.token imports aiohttp"]
    assert http_imports({"tokensrv.server.routes": handler}) == []
