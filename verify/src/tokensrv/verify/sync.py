"""SyncVerifier: TokenVerifier for synchronous services (Flask, Django, any WSGI app).

One background thread per process runs an event loop with a TokenVerifier in it: the JWKS is
refreshed and the revocation mirror follows tokensrv's feed there, while requests, in whatever
threads the server runs them, hand their token to that loop and wait for the answer. A request
makes no network call (the keys and the deny-list are in memory; only a token naming an unknown
`kid` makes the loop fetch the JWKS, rate-limited as in TokenVerifier), and a revocation reaches
the service as soon as the feed delivers it.

    verifier = SyncVerifier("http://127.0.0.1:8080", "orders", "redis://127.0.0.1:6379/0")
    claims = verifier.verify(token)  # starts the thread on first use; InvalidToken if refused

Every TokenVerifier state (keys, deny-list, DPoP replay cache) is touched by the loop's thread
only, so nothing in it needs a lock. The thread starts once per process (after a fork, as in a
pre-forking server that imported the app first, the child starts its own) and is stopped by
close(), or at interpreter exit.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Self, TypeVar

from . import http
from .errors import VerifierUnavailable
from .verifier import TokenVerifier

log = logging.getLogger("tokensrv.verify")

T = TypeVar("T")
START_TIMEOUT = 10.0  # seconds start() waits for the first JWKS fetch and deny-list load
CALL_TIMEOUT = 10.0  # seconds a request waits for the loop (an unknown kid's fetch takes at most 5)


class SyncVerifier:
    """A blocking TokenVerifier. Takes TokenVerifier's arguments (issuer, audience, redis_url and
    its keyword options), plus `start_timeout` and `call_timeout` in seconds."""

    def __init__(self, issuer: str, audience: str, redis_url: str | None = None, *,
                 start_timeout: float = START_TIMEOUT, call_timeout: float = CALL_TIMEOUT,
                 **options: Any) -> None:
        self.issuer, self.audience = issuer, audience
        self.start_timeout, self.call_timeout = start_timeout, call_timeout
        self._redis_url, self._options = redis_url, options
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._verifier: TokenVerifier | None = None
        self._pid = 0
        self._closed = False  # by close(): calls are refused until start() is called again

    # ---- lifecycle ----

    def start(self) -> Self:
        """Start the thread and the verifier in it, once per process; wait (up to
        `start_timeout`) for the keys and the deny-list. If tokensrv or the store is not there
        yet, TokenVerifier keeps trying in the background: see `ready`."""
        with self._lock:
            if self._loop is not None and self._pid == os.getpid():
                return self
            self._pid, self._closed = os.getpid(), False  # a forked child's copy of the thread is not running
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            self._thread = threading.Thread(target=_run, args=(loop, ready), name="tokensrv-verify", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
            # made here, per process: it opens nothing until started, in its loop
            self._verifier = TokenVerifier(self.issuer, self.audience, self._redis_url, **self._options)
            started = asyncio.run_coroutine_threadsafe(self._verifier.start(), loop)
            try:  # bounded by the fetch's and the load's own timeouts; never cancelled half-way
                started.result(self.start_timeout)
            except concurrent.futures.TimeoutError:
                log.warning("tokensrv.verify: not ready after %g s; it goes on trying in the background",
                            self.start_timeout)
        atexit.register(self.close)
        return self

    def close(self) -> None:
        """Stop the verifier and its thread (idempotent)."""
        with self._lock:
            loop, thread, verifier = self._loop, self._thread, self._verifier
            self._loop = self._thread = self._verifier = None
            self._closed = True
            if loop is None or thread is None or verifier is None or self._pid != os.getpid():
                return
            try:
                asyncio.run_coroutine_threadsafe(verifier.close(), loop).result(self.call_timeout)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(self.call_timeout)
                loop.close()
        atexit.unregister(self.close)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def verifier(self) -> TokenVerifier:
        """The TokenVerifier in the loop (started if need be): read its state, call nothing on it."""
        self._running()
        assert self._verifier is not None
        return self._verifier

    @property
    def ready(self) -> bool:
        """Keys loaded, and (when following revocations) the mirror connected and current."""
        return self.verifier.ready

    @property
    def dpop_algorithms(self) -> frozenset[str]:
        return self.verifier.dpop_algorithms

    # ---- verification: each runs in the loop, the caller's thread waits ----

    def verify(self, token: str, *, scopes: Iterable[str] = (), roles: Iterable[str] = (),
               dpop_proof: str | None = None, method: str = "", url: str = "") -> dict[str, Any]:
        """TokenVerifier.verify, blocking: the claims, or InvalidToken (or a subclass)."""
        return self._call(lambda v: v.verify(token, scopes=scopes, roles=roles, dpop_proof=dpop_proof,
                                             method=method, url=url))

    def verify_logout_token(self, token: str, *, audience: str | None = None,
                            refuse_replay: bool = True) -> dict[str, Any]:
        """TokenVerifier.verify_logout_token, blocking."""
        return self._call(lambda v: v.verify_logout_token(token, audience=audience, refuse_replay=refuse_replay))

    def verify_request(self, request: http.Presented, realm: str) -> http.Verified:
        """http.verify_request, blocking: the request's verified token, or http.Refused."""
        return self._call(lambda v: http.verify_request(v, request, realm))

    def receive_logout(self, tokens: list[str], audience: str | None = None) -> dict[str, Any]:
        """http.receive_logout, blocking: the logout token's claims, or http.Refused."""
        return self._call(lambda v: http.receive_logout(v, tokens, audience))

    def _call(self, work: Callable[[TokenVerifier], Awaitable[T]]) -> T:
        verifier = self._running()

        async def run() -> T:  # the coroutine is made in the loop: a refused call leaves none unawaited
            return await work(verifier)
        return self._run_in_loop(run(), self.call_timeout)

    def _running(self) -> TokenVerifier:
        if self._closed:
            raise VerifierUnavailable("the verifier is closed")
        if self._loop is None or self._pid != os.getpid():
            self.start()
        verifier = self._verifier
        if verifier is None:
            raise VerifierUnavailable("the verifier is closed")
        return verifier

    def _run_in_loop(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise VerifierUnavailable("the verifier is closed")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise VerifierUnavailable(f"no answer from the verifier's loop in {timeout:g} s") from None


def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
