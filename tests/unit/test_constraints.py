"""constraints.txt pins what setup.cfg asks for, so a fresh clone installs what CI tested."""
from __future__ import annotations

import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    lines += [line for extra in cfg["options.extras_require"].values() for line in extra.splitlines()]
    return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {raw!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_every_requirement_is_pinned_to_a_version_it_allows() -> None:
    pins = _pins()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in setup.cfg but not pinned: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside setup.cfg's "
            f"{requirement.specifier}: run make lock")
