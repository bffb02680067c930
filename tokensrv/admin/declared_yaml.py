"""The declared-configuration file (`tokensrv apply -f FILE`) read as YAML, bounded, with the place
of every value kept, so that each error names the line and column it is about.

Bounded because the file may come from a pull request: at most MAX_FILE bytes, MAX_DEPTH levels,
and no anchors or aliases (a few lines of aliases expand to gigabytes: "billion laughs"). YAML's
timestamps stay strings (a date is no JSON value), a tag that makes anything but a JSON value
(`!!binary`, `!!set`, `!!timestamp`, ...) or a number that is not finite is an error, and a key given
twice is an error (YAML keeps the last one without a word).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml

MAX_FILE = 1024 * 1024
MAX_DEPTH = 32
_YAML_TAG = "tag:yaml.org,2002:"
# the tags of JSON's values: any other (!!binary, !!set, !!timestamp, !!omap, !custom) is refused
_SCALAR_TAGS = {_YAML_TAG + name for name in ("str", "int", "float", "bool", "null")}


@dataclass(frozen=True)
class Problem:
    """One error: where (1-based line and column; 0: the whole file), the value's path, and why."""
    line: int
    column: int
    path: str
    message: str

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}:{self.column}" if self.line else filename
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class FileProblems(Exception):
    """The file is refused: every problem found, in the order of the file."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))


# libyaml's parser when PyYAML has it (ten times faster: a file of 4000 entries in under a second)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]  # PyYAML has no types here
    """SafeLoader without timestamps: `2026-12-08` stays the string it reads as."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


@dataclass(frozen=True)
class Document:
    """The file's data (plain JSON-like values) and its node tree, for the places of values."""
    data: Any
    root: yaml.Node | None


def read_document(raw: bytes) -> Document:
    """The YAML document in `raw`, or FileProblems naming the line."""
    if len(raw) > MAX_FILE:
        raise FileProblems([Problem(0, 0, "", f"larger than {MAX_FILE} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblems([Problem(0, 0, "", "not UTF-8 text")]) from None
    try:
        _check_events(text)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _check_nodes(root)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise FileProblems([Problem(line, column, "", f"not valid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise FileProblems([Problem(0, 0, "", f"not valid YAML: {exc}")]) from None
    return Document(data, root)


def _check_events(text: str) -> None:
    """Refuse anchors, aliases and deep nesting before anything is built from the text."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise FileProblems([Problem(mark.line + 1, mark.column + 1, "",
                                        "YAML anchors and aliases are not allowed: write each value out")])
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise FileProblems([Problem(mark.line + 1, mark.column + 1, "",
                                            f"nested deeper than {MAX_DEPTH} levels")])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _refuse(node: yaml.Node, message: str) -> FileProblems:
    return FileProblems([Problem(node.start_mark.line + 1, node.start_mark.column + 1, "", message)])


def _check_nodes(node: yaml.Node) -> None:
    """Only JSON's values (by their tags; numbers finite), and a key given twice in one mapping is an
    error: YAML would keep the last without a word."""
    allowed = {yaml.MappingNode: {_YAML_TAG + "map"}, yaml.SequenceNode: {_YAML_TAG + "seq"}}.get(type(node),
                                                                                               _SCALAR_TAGS)
    if node.tag not in allowed:
        raise _refuse(node, f"the YAML tag {node.tag.replace(_YAML_TAG, '!!')} is not allowed: only strings, "
                            "numbers, true/false, null, lists and mappings")
    if node.tag == _YAML_TAG + "float" and not _finite(node.value):
        raise _refuse(node, f"{node.value!r} is not a finite number")
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            mark = key.start_mark
            if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                raise FileProblems([Problem(mark.line + 1, mark.column + 1, "", "a key must be a string")])
            if key.value in seen:
                raise FileProblems([Problem(mark.line + 1, mark.column + 1, "",
                                            f"key {key.value!r} given twice in one mapping")])
            seen.add(key.value)
            _check_nodes(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_nodes(item)


def _finite(text: str) -> bool:
    number = text.replace("_", "").lower().lstrip("+-")
    if number in (".inf", ".nan"):
        return False
    try:
        return math.isfinite(float(number))
    except ValueError:  # YAML 1.1's 1:30.5 (sexagesimal): finite
        return True


def node_at(root: yaml.Node | None, path: list[str | int], key: bool = False) -> yaml.Node | None:
    """The node of the value at `path` (its key's node if `key`), or the nearest one that exists."""
    node = root
    for step in path:
        child = _child(node, step, key and step == path[-1])
        if child is None:
            return node
        node = child
    return node


def _child(node: yaml.Node | None, step: str | int, key: bool) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(step):
                return k if key else v
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        return node.value[step]
    return None


def path_text(path: list[str | int]) -> str:
    """`clients[1].redirect_uris[0]`: how an error names a value."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def problem_at(root: yaml.Node | None, path: list[str | int], message: str, key: bool = False) -> Problem:
    node = node_at(root, path, key)
    mark = node.start_mark if node is not None else None
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return Problem(line, column, path_text(path), message)
