"""argon2id hashing in a pool of worker processes: the work never runs in the serving process.

A hash costs about 0.3 s of CPU and 64 MiB of memory. In worker processes it holds no GIL of the
server (a hashing thread had to take the server's GIL back after every hash, and waited for a
core at the lowest priority while holding it), and the workers run at the lowest CPU priority
(nice ARGON2_NICE): token and JWKS requests take a fraction of a millisecond, so when both want a
core the short requests go first and logins use what is left.

The workers come from a forkserver, not from fork(): the server has threads and an event loop
that a forked child would inherit half-way. The forkserver starts once per server process (about
0.4 s, before serving) and forks each worker from a small warm process (tens of ms), which also
makes replacing a crashed pool cheap; `spawn` would start a fresh interpreter for every worker.

A bounded number of checks may wait for a worker (`queue`); past it a login fails fast with
Unavailable (503 temporarily_unavailable upstream) instead of queueing without end. A worker that
dies fails every job the pool held (fail closed: an error, never a success), and the next job
gets a new pool.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger("tokensrv")
T = TypeVar("T")
# The lowest priority: on a busy core the event loop gets about 68 times the CPU of each argon2
# worker (nice 0 weighs 1024, nice 19 weighs 15), so a burst of logins leaves token and JWKS
# latency near its idle level. Logins run at full speed while the server has idle time.
ARGON2_NICE = 19
QUEUE_PER_PROCESS = 8  # default bound: checks waiting per worker process (~2.4 s at 0.3 s each)
STOP_TIMEOUT = 5.0  # seconds a terminated worker gets to exit before it is killed
ORPHAN_POLL = 1.0  # seconds between looks at the server process where no pidfd can watch it
START_METHOD = "forkserver"


class Unavailable(Exception):
    """The job did not run to an answer: the queue is full, a worker died, or the pool is closed."""


@dataclass(frozen=True)
class Checked:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used older parameters: store this one


# ---- in the worker processes ----

_hasher: PasswordHasher | None = None


def start_worker(hasher: PasswordHasher, server_pid: int) -> None:
    """Each worker's initializer: the lowest CPU priority, no Ctrl-C of its own, the hasher, and
    an exit when the server process is gone.

    On Linux the nice value is per thread; argon2's lane threads inherit it from this one.
    SIGINT is ignored: the server stops its workers itself (close()), and a terminal's Ctrl-C
    reaches the whole process group. The hasher arrives pickled, once per worker.
    """
    global _hasher
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(ARGON2_NICE)  # clamped at 19
    _hasher = hasher
    threading.Thread(target=_exit_after, args=(server_pid,), name="argon2-orphan-watch", daemon=True).start()


def _exit_after(server_pid: int) -> None:
    """Wait for the server process to end, then end this worker.

    A server killed without its close() (SIGKILL, the OOM killer) would otherwise leave its
    workers and their forkserver running for ever: a worker is the forkserver's child, not the
    server's, it holds both ends of its job queue's pipe (so it never reads an end of file), and
    it holds the forkserver's "alive" pipe open (so the forkserver never sees the server go)."""
    try:
        watch = os.pidfd_open(server_pid)  # Linux: readable once the process has exited
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # elsewhere: look now and then (signal 0 only checks)
        while _running(server_pid):
            time.sleep(ORPHAN_POLL)
        os._exit(0)
    select.select([watch], [], [])
    os._exit(0)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the number: ours is gone
        return False
    return True


def _worker_hasher() -> PasswordHasher:
    if _hasher is None:
        raise RuntimeError("not in an argon2 worker")
    return _hasher


MIN_LENGTH, MAX_LENGTH = 8, 1024


def password_problem(password: str) -> str | None:
    """What is wrong with a new password (`user add`, `user passwd`, the account page), or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return _worker_hasher().hash(password)


def verify_password(stored_hash: str, password: str, decoy: bool) -> Checked:
    """A decoy verification (no such user) costs the same as a real one and is never ok."""
    hasher = _worker_hasher()
    try:
        hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
        return Checked(False)
    if decoy:
        return Checked(False)
    if hasher.check_needs_rehash(stored_hash):
        return Checked(True, hasher.hash(password))
    return Checked(True)


# ---- in the server process ----

def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context(START_METHOD)
    # what the forkserver imports once, so that each worker it forks starts warm: the program's
    # main module (the default) and this one, with argon2
    context.set_forkserver_preload(["__main__", __name__])
    return context


def stop_helpers() -> None:
    """End this process's forkserver and multiprocessing resource tracker now (a server process
    stopping, every pool closed): otherwise each lingers until it notices that this process
    exited. A pool made after this starts them again."""
    from multiprocessing import forkserver, resource_tracker
    for helper in (forkserver._forkserver, resource_tracker._resource_tracker):
        stop = getattr(helper, "_stop", None)  # no public way; the stdlib's own tests use this
        if stop is not None:
            stop()


class PasswordPool:
    """`processes` argon2 workers; at most `queue` jobs waiting beyond those running (None: no bound).

    `hasher` is pickled to each worker: a subclass must be importable there (module level).
    `warm`: start the forkserver and a worker now (a server, before it serves); otherwise nothing
    starts until the first job (a CLI command, most of which never hash).
    """

    def __init__(self, processes: int = 0, hasher: PasswordHasher | None = None,
                 on_depth: Callable[[int], None] | None = None, queue: int | None = None,
                 warm: bool = True) -> None:
        self.processes = processes or os.cpu_count() or 1
        self.hasher = hasher or PasswordHasher()
        self.queue = queue
        self.waiting = 0  # queued + running jobs: the pool's depth
        self._on_depth = on_depth  # told each new depth (the server's metrics gauge)
        self._closed = False
        self._pool: ProcessPoolExecutor | None = None
        # An unknown username is verified against this decoy, so it costs the same as a wrong
        # password. Made in a worker too: even the constructor keeps argon2 out of this process.
        self._decoy: Future[str] | None = None
        if warm:
            self._decoy = self._submit(hash_password, os.urandom(16).hex())

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=_context(), initializer=start_worker,
                                   initargs=(self.hasher, os.getpid()))

    @property
    def full(self) -> bool:
        return self.queue is not None and self.waiting >= self.processes + self.queue

    def pids(self) -> list[int]:
        """The worker processes running now (they start on demand, up to `processes`)."""
        if self._pool is None:
            return []
        return list(self._pool._processes or ())  # the executor names no public way

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def check(self, stored_hash: str | None, password: str) -> Checked:
        """Whether `password` matches; `stored_hash=None` (no such user) or "" (a user with no password
        yet: `tokensrv apply`) is a decoy check, never ok, at the cost of a wrong password.
        Raises Unavailable when no answer could be computed: never read that as a success."""
        if stored_hash:
            return await self._run(verify_password, stored_hash, password, False)
        return await self._run(verify_password, await self._decoy_hash(), password, True)

    async def _decoy_hash(self) -> str:
        if self._decoy is None:
            self._decoy = self._submit(hash_password, os.urandom(16).hex())
        try:
            return await asyncio.wrap_future(self._decoy)
        except BrokenProcessPool:  # its worker died before it was made: make it in the new pool
            self._decoy = self._submit(hash_password, os.urandom(16).hex())
            return await self._decoy_hash()

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        if self.full:
            raise Unavailable("argon2 queue full")
        self._count(+1)
        try:
            return await asyncio.wrap_future(self._submit(func, *args))
        except BrokenProcessPool:
            raise Unavailable("an argon2 worker died") from None
        finally:
            self._count(-1)

    def _submit(self, func: Callable[..., T], *args: object) -> Future[T]:
        if self._closed:
            raise Unavailable("the password pool is closed")
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(func, *args)
        except BrokenProcessPool:  # a worker died since the last job: every job it held has failed
            log.warning("an argon2 worker process died: starting a new pool")
            self._stop(self._pool)
            self._pool = self._new_pool()
            return self._pool.submit(func, *args)

    def _count(self, change: int) -> None:
        self.waiting += change
        if self._on_depth is not None:
            self._on_depth(self.waiting)

    def close(self) -> None:
        """Stop the workers now (a hash in progress is abandoned) and wait until they and the
        pool's threads are gone; the pool's queues go with it."""
        self._closed = True
        if self._pool is not None:
            self._stop(self._pool)
            self._pool = None

    @staticmethod
    def _stop(pool: ProcessPoolExecutor) -> None:
        """The workers terminated, then the executor's manager thread joined: it fails their jobs
        and closes its queues (joining their feeder thread). Left running, it outlived close():
        racing the interpreter's exit ("Exception ignored ... Bad file descriptor"), and holding
        the queues' semaphores past stop_helpers(), whose resource tracker then warned of leaked
        semaphores and a new one printed tracebacks when they were finally released."""
        processes = list((pool._processes or {}).values())
        # the executor names no public way to it, and shutdown() forgets it unless wait=True,
        # which would wait for every hash in progress
        manager: threading.Thread | None = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(STOP_TIMEOUT)
            if process.exitcode is None:
                process.kill()
                process.join()
        if manager is not None:
            manager.join()  # bounded: its workers are gone, so its wait ends at once
