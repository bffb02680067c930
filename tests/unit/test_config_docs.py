"""Each setting is declared once (tokensrv/config/): its reader, bounds and documentation line. The
configuration reference (docs/reference/configuration.md) is written from those declarations and
must not drift from them."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tokensrv.cli import remote
from tokensrv.config import SETTINGS, ConfigError, Settings, env_name, load_settings, markdown_table

ROOT = Path(__file__).resolve().parents[2]
PAGE = "docs/reference/configuration.md"
REFERENCE = (ROOT / PAGE).read_text(encoding="utf-8")
# every page a reader may take a variable's name from: the README and the whole site
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
URL = {"TOKENSRV_REDIS_URL": "redis://127.0.0.1:6379/0"}


def reference_table() -> str:
    found = re.search(r"^<!-- generated:start -->\n(.*?)^<!-- generated:end -->$", REFERENCE,
                      re.DOTALL | re.MULTILINE)
    assert found, f"{PAGE} has no <!-- generated:start --> ... <!-- generated:end --> lines"
    return found.group(1)


def test_the_reference_table_is_the_one_the_declarations_render():
    assert reference_table() == markdown_table(), f"{PAGE}'s configuration table is stale: make docs-reference"


def test_the_check_tool_agrees():
    done = subprocess.run([sys.executable, "scripts/docs_reference.py", "--check", PAGE], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_variable_the_docs_name_is_declared(page: Path):
    named = set(re.findall(r"TOKENSRV_[A-Z0-9_]*[A-Z0-9]", page.read_text(encoding="utf-8")))
    declared = {env_name(name) for name in SETTINGS}
    # the Django adapter's entry in a service's settings.py; the CLI's own, for --server (not the server's)
    not_variables = {"TOKENSRV_VERIFY", *remote.ENVIRONMENT}
    assert named - declared - not_variables == set()


def test_every_setting_is_declared_with_its_documentation():
    assert list(SETTINGS) == [f.name for f in dataclasses.fields(Settings)]
    for name, setting in SETTINGS.items():
        assert setting.doc and setting.default_doc, name
        assert "|" not in setting.doc + setting.default_doc, name  # it would break the table's row


@pytest.mark.parametrize("name", list(SETTINGS))
def test_each_default_passes_its_own_reader(name: str):
    default = getattr(Settings(), name)
    assert SETTINGS[name].read(env_name(name), default) == default


@pytest.mark.parametrize("env, message", [
    ({"TOKENSRV_PORT": "0"}, "TOKENSRV_PORT must be a positive whole number, got '0'"),
    ({"TOKENSRV_PORT": "70000"}, "TOKENSRV_PORT must be at most 65535, got 70000"),
    ({"TOKENSRV_ACCESS_TOKEN_TTL": "86401"}, "TOKENSRV_ACCESS_TOKEN_TTL must be at most 86400 seconds, got 86401"),
    ({"TOKENSRV_DURABLE_REPLICAS": "17"}, "TOKENSRV_DURABLE_REPLICAS must be at most 16, got 17"),
    ({"TOKENSRV_JWKS_MAX_AGE": "-1"}, "TOKENSRV_JWKS_MAX_AGE must be a non-negative whole number, got '-1'"),
    ({"TOKENSRV_BODY_TIMEOUT": "inf"}, "TOKENSRV_BODY_TIMEOUT must be a positive number, got 'inf'"),
    ({"TOKENSRV_TOKEN_RATE_BURST": "0"}, "TOKENSRV_TOKEN_RATE_BURST must be a positive whole number, got '0'"),
    ({"TOKENSRV_TOKEN_RATE_PER_CLIENT": "-1"},
     "TOKENSRV_TOKEN_RATE_PER_CLIENT must be a non-negative number, got '-1'"),
    ({"TOKENSRV_REQUIRE_PAR": "maybe"}, "TOKENSRV_REQUIRE_PAR must be true or false, got 'maybe'"),
    ({"TOKENSRV_LOG_FORMAT": "xml"}, "TOKENSRV_LOG_FORMAT must be 'json' or 'text', got 'xml'"),
    ({"TOKENSRV_LOG_LEVEL": "Verbose"},
     "TOKENSRV_LOG_LEVEL must be one of debug, info, warning, error, got 'verbose'"),
    ({"TOKENSRV_KEY_ALGORITHM": "HS256"}, "TOKENSRV_KEY_ALGORITHM must be one of RS256, ES256, EdDSA, got 'HS256'"),
    ({"TOKENSRV_REGISTRATION_SCOPES": 'openid "x"'}, "TOKENSRV_REGISTRATION_SCOPES: malformed scope '\"x\"'"),
    ({"TOKENSRV_TRUSTED_PROXIES": "10.0.0.0/8, nope"},
     "TOKENSRV_TRUSTED_PROXIES: 'nope' is not an IP address or network"),
])
def test_each_declared_bound_gives_one_line_naming_the_setting(env: dict[str, str], message: str):
    with pytest.raises(ConfigError) as caught:
        load_settings({**URL, **env})
    assert str(caught.value) == message


def test_cli_flags_go_through_the_same_readers():
    with pytest.raises(ConfigError) as caught:
        load_settings(URL, workers="0")
    assert str(caught.value) == "TOKENSRV_WORKERS must be a positive whole number, got '0'"
    assert load_settings(URL, workers="3", port=9000, keys_dir="k").workers == 3
    with pytest.raises(TypeError):
        load_settings(URL, no_such_setting="1")
