"""constraints.txt pins what setup.cfg asks for, so a fresh clone installs what CI tested."""
from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# the distributions of this repository: installed from the checkout (Makefile, Dockerfile), never pinned
OURS = {"tokensrv", "tokensrv-verify"}


def _requirements() -> list[Requirement]:
    """The server's (setup.cfg) and the verifier's (verify/pyproject.toml), with every extra."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    lines += [line for extra in cfg["options.extras_require"].values() for line in extra.splitlines()]
    verifier = tomllib.loads((ROOT / "verify" / "pyproject.toml").read_text())["project"]
    lines += [*verifier["dependencies"], *(line for extra in verifier["optional-dependencies"].values()
                                           for line in extra)]
    requirements = [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]
    return [requirement for requirement in requirements if canonicalize_name(requirement.name) not in OURS]


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
