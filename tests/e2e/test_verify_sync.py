"""SyncVerifier against a real `tokensrv serve` and Valkey: one background thread per process
whatever the number of request threads, no request to tokensrv per verification, revocations
followed in the background, a clean stop; and tokensrv.verify importing no web framework."""
from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.downstream import Issuer, verifier_options
from tests.helpers.live import LiveServer
from tests.helpers.poll import eventually_sync
from tests.helpers.verify import issuer_requests
from tests.helpers.verify_live import DEADLINE
from tokensrv.verify import RevokedToken, VerifierUnavailable
from tokensrv.verify.sync import SyncVerifier


def verifier_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tokensrv-verify"]


def test_many_request_threads_share_one_background_thread(live_server: LiveServer) -> None:
    token = Issuer(live_server).token()
    options = verifier_options(live_server)
    verifier = SyncVerifier(options.pop("issuer"), options.pop("audience"), **options)
    assert verifier_threads() == []
    try:
        with ThreadPoolExecutor(8) as pool:  # the first calls race to start it
            claims = list(pool.map(lambda _: verifier.verify(token, scopes=["orders:read"]), range(200)))
        assert {c["jti"] for c in claims} == {claims[0]["jti"]}
        assert len(verifier_threads()) == 1
        assert issuer_requests(verifier.verifier) == 2  # discovery and the JWKS, once, at start
    finally:
        verifier.close()
    assert verifier_threads() == []
    with pytest.raises(VerifierUnavailable):
        verifier.verify(token)


def test_a_revocation_reaches_the_sync_verifier(live_server: LiveServer) -> None:
    issuer = Issuer(live_server)
    token = issuer.token()
    options = verifier_options(live_server)
    with SyncVerifier(options.pop("issuer"), options.pop("audience"), **options) as verifier:
        assert verifier.ready and verifier.verify(token)["aud"] == "orders"
        issuer.revoke(token)

        def refused() -> bool:
            try:
                verifier.verify(token)
            except RevokedToken:
                return True
            return False
        eventually_sync(refused, "the revoked token is refused", timeout=DEADLINE)
        assert issuer_requests(verifier.verifier) == 2


def test_the_verifier_and_its_neutral_core_import_no_web_framework() -> None:
    frameworks = ("fastapi", "starlette", "flask", "django", "werkzeug")
    code = ("import sys, tokensrv.verify, tokensrv.verify.http, tokensrv.verify.sync; "
            f"print([m for m in {frameworks!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


FORKED = """
import os, sys, threading
from tokensrv.verify.sync import SyncVerifier

issuer, redis_url, token = sys.argv[1:]
verifier = SyncVerifier(issuer, "orders", redis_url).start()  # as a preloading server's parent does
assert verifier.verify(token)["aud"] == "orders"
pid = os.fork()
if pid == 0:  # a worker: the parent's thread did not come along; its first call starts its own
    threads = lambda: [t for t in threading.enumerate() if t.name == "tokensrv-verify"]
    alone = threads() == []
    claims = verifier.verify(token)
    print("child", alone, len(threads()), claims["aud"], flush=True)
    verifier.close()
    os._exit(0)
os.waitpid(pid, 0)
print("parent", verifier.verify(token)["aud"], flush=True)
verifier.close()
"""


def test_a_forked_worker_starts_its_own_background_thread(live_server: LiveServer) -> None:
    token = Issuer(live_server).token()
    result = subprocess.run([sys.executable, "-c", FORKED, live_server.url, live_server.redis_url, token],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["child True 1 orders", "parent orders"], result.stderr
