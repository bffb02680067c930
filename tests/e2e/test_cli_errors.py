"""Issue 21 item 11: a CLI command that fails writes its one error line and nothing after it (it
sometimes added "Exception ignored ... Bad file descriptor": the argon2 pool it had started for
nothing was still shutting down while the interpreter exited)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

RUNS = 4  # per command: what went wrong was a race at exit, so each runs a few times

FAILING = [
    ("user", "add", "bad user!", "--password-stdin"),  # a bad argument, found once the store is reached
    ("keys", "revoke", "no-such-kid"),
    ("client", "add", "--id", "app", "--redirect-uri", "not a url"),
    ("client", "add", "--id", "spa", "--public", "--allowed-origin", "https://*.app.example"),
    ("--redis-url", "redis://127.0.0.1:1/0", "user", "show", "alice"),  # the store unreachable
]


@pytest.mark.parametrize("args", FAILING, ids=lambda args: " ".join(args[:3]))
def test_a_failing_command_writes_exactly_one_line(redis_url, tmp_path, args):
    env = {**os.environ, "TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(tmp_path / "keys")}
    if args[0] == "--redis-url":  # the option belongs to the subcommand
        args = (*args[2:], *args[:2])
    for _ in range(RUNS):
        done = subprocess.run([sys.executable, "-m", "tokensrv", *args], env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode != 0
        assert done.stderr.startswith("tokensrv: error: ") and len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize("args", [(b"client", b"show", b"\xff"), (b"user", b"show", b"al\xffice"),
                                  (b"client", b"add", b"--id", b"\xfe\xff")], ids=lambda args: args[0].decode())
def test_an_argument_that_is_not_utf8_is_one_line_and_exit_2(redis_url, tmp_path, args):
    """A byte string the shell passes as is (`tokensrv client show $'\\xff'`): one line naming
    which argument, exit 2 as argparse's usage errors, for any command; no traceback."""
    env = {**os.environ, "TOKENSRV_REDIS_URL": redis_url, "TOKENSRV_KEYS_DIR": str(tmp_path / "keys")}
    done = subprocess.run([sys.executable.encode(), b"-m", b"tokensrv", *args], env=env, capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("tokensrv: error: ") and "UTF-8" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("flag", ["--redis-url", "--keys-dir"])
def test_an_empty_setting_flag_is_an_error_naming_it(tmp_path, flag):
    """`--redis-url ''` is not "unset": it once fell back to the default URL without a word."""
    done = subprocess.run([sys.executable, "-m", "tokensrv", "client", "list", flag, ""], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TOKENSRV_KEYS_DIR": str(tmp_path / "keys")})
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("tokensrv: error: ") and f"{flag} is empty" in done.stderr
