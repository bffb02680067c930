"""The admin commands behind `tokensrv keys | client | user | token | status`.

Imported by cli.main only once it knows the command is not `serve`: this module pulls in the whole
server (and prometheus-client), which `serve --workers N` must import only after it has set
PROMETHEUS_MULTIPROC_DIR.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError

from tokensrv.cli import admin
from tokensrv.cli.client_flags import CLIENT_FLAGS, client_flag
from tokensrv.cli.console import CLIError, read_password, settings_from
from tokensrv.cli.user_import import Row, by_line, import_users, read_rows
from tokensrv.config import Settings, redact_url
from tokensrv.keys.manager import KeyManager
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.observability.logs import audit, setup_logging
from tokensrv.passwords import PasswordPool
from tokensrv.store.connect import open_redis
from tokensrv.store.redis import RedisStore
from tokensrv.verify.json_limits import JSONRejected, parse


def run_command(args: argparse.Namespace) -> int:
    """Run one admin command; errors are one line on stderr and status 1."""
    settings = settings_from(args)
    # audit lines (and key rotation steps) go to stderr: stdout stays the command's answer
    setup_logging(settings.log_format, logger="tokensrv")
    try:
        result = asyncio.run(run_admin(args, settings))
    except (CLIError, admin.AdminError) as exc:
        print(f"tokensrv: error: {exc}", file=sys.stderr)
        return 1
    except RedisError as exc:  # the store went away after the first ping; its text stays out
        print(f"tokensrv: error: the store failed ({type(exc).__name__}); try again", file=sys.stderr)
        return 1
    if isinstance(result, Failed):
        emit(result.result, args.json)
        return 1
    if args.command == "status" and not args.json:
        print_status(result)
    else:
        emit(result, args.json)
    return 0


class Failed:
    """A command that printed its result but must exit non-zero (some rows of an import failed)."""

    def __init__(self, result: Any) -> None:
        self.result = result


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@asynccontextmanager
async def admin_provider(settings: Settings, processes: int = 1) -> AsyncIterator[Provider]:
    """A Provider for one admin command: the store (checked reachable) and the keys folder."""
    redis = open_redis(settings.redis_url)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise CLIError(f"TOKENSRV_REDIS_URL: cannot reach the store at {redact_url(settings.redis_url)} "
                       f"({type(exc).__name__})") from None
    store = RedisStore(redis, durable_replicas=settings.durable_replicas)
    # no queue bound: an import waits for every hash; not warm: most commands never hash, and
    # those start no process at all
    passwords = PasswordPool(processes, warm=False)
    try:
        keys = KeyManager(settings, store.locks, lambda: int(time.time()))
        yield Provider(settings, store, keys, passwords, time.time)
    finally:
        passwords.close()
        await redis.aclose()


def emit(result: Any, as_json: bool) -> None:
    if as_json or not isinstance(result, list):
        print(json.dumps(result, indent=None if as_json else 2))
        return
    print_table(result)


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("(none)")
        return
    columns = list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    return "-" if value is None else str(value)


def print_status(s: dict[str, Any]) -> None:
    store = s["store"]
    print(f"store:   {store['url']} reachable, {store['latency_ms']} ms round trip")
    print(f"clients: {s['clients']}   users: {s['users']}")
    step = s["next_rotation_step"]
    print("next key rotation step: " + ("none planned" if step is None else
                                          f"{step['step']} at {step['due_at']} (in {step['in_seconds']} s)"))
    for problem in s["key_problems"]:
        print(f"key problem: {problem}")
    print_table(s["keys"])


def progress(label: str) -> Callable[[int, int], None]:
    """A progress line on stderr: rewritten in place on a terminal, every tenth otherwise."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if tty:
            print(f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)
    return report


async def run_admin(args: argparse.Namespace, settings: Settings) -> Any:
    processes = cores() if (args.command, getattr(args, "action", None)) == ("user", "import") else 1
    async with admin_provider(settings, processes) as p:
        handler = ADMIN[(args.command, getattr(args, "action", None))]
        return await handler(p, args)


def read_token(args: argparse.Namespace) -> str:
    token = sys.stdin.readline() if args.token == "-" else args.token
    token = token.strip()
    if not token:
        raise CLIError("no token given (pass - and the token on standard input)")
    return token


# ---- keys ----

async def _keys_list(p: Provider, args: argparse.Namespace) -> Any:
    await p.keys.reload(force=True)
    for problem in p.keys.ring.problems:
        print(problem, file=sys.stderr)
    return [admin.key_view(k) for k in p.keys.ring.keys]


async def _keys_init(p: Provider, args: argparse.Namespace) -> Any:
    await p.keys.reload(force=True)
    if p.keys.ring.signing is None:
        print("generating the first signing keys...", file=sys.stderr, flush=True)
        await p.keys.tick()
        audit("admin.keys_initialised")
    return await _keys_list(p, args)


async def _keys_rotate(p: Provider, args: argparse.Namespace) -> Any:
    print("rotating (a new key may be generated)...", file=sys.stderr, flush=True)
    await admin.rotate_keys(p)
    audit("admin.keys_rotated")
    return await _keys_list(p, args)


async def _keys_revoke(p: Provider, args: argparse.Namespace) -> Any:
    await admin.revoke_key(p, args.kid)
    audit("admin.key_revoked", kid=args.kid)
    return await _keys_list(p, args)


# ---- clients ----

async def _client_add(p: Provider, a: argparse.Namespace) -> Any:
    result = await admin.add_client(p, a.client_id, metadata_from_args(a), client_flag)
    audit("admin.client_added", client_id=a.client_id, public=a.public)
    return result


def metadata_from_args(a: argparse.Namespace) -> ClientMetadata:
    """`client add`'s flags (cli.CLIENT_FLAGS) as client metadata; --jwks-file read here."""
    values = {field: getattr(a, field) for field in CLIENT_FLAGS}
    values["jwks"] = read_jwks(a.jwks) if a.jwks else None
    return ClientMetadata(**values)


async def _client_token(p: Provider, a: argparse.Namespace) -> Any:
    result = await admin.mint_initial_token(p, duration(a.ttl, "--ttl"), a.uses)
    audit("admin.initial_token_minted", uses=a.uses, expires_at=result["expires_at"])
    return result


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(raw: str, flag: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `1h` or `7d`."""
    text = raw.strip().lower()
    unit = _UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise CLIError(f"{flag} must be a whole number of seconds or end in s, m, h or d, got {raw!r}")
    return int(number) * (unit or 1)


MAX_JWKS_FILE = 64 * 1024


def read_jwks(path: str) -> Any:
    """The JSON of a --jwks-file (admin.add_client checks that it holds public keys only)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JWKS_FILE + 1)
    except OSError as exc:
        raise CLIError(f"cannot read the JWKS file {path!r}: {exc.strerror}") from None
    if len(raw) > MAX_JWKS_FILE:
        raise CLIError(f"the JWKS file {path!r} is over {MAX_JWKS_FILE} bytes")
    try:
        return parse(raw, max_bytes=MAX_JWKS_FILE)
    except JSONRejected as exc:
        raise CLIError(f"the JWKS file {path!r} is not JSON we accept: {exc}") from None


async def _client_list(p: Provider, a: argparse.Namespace) -> Any:
    shown = ("client_id", "client_name", "type", "registered", "token_endpoint_auth_method", "grant_types",
             "scopes", "audience", "first_party")
    views = [admin.client_view(c) for c in await p.store.clients.list_clients()]
    return [{k: view[k] for k in shown} for view in views]


async def _client_show(p: Provider, a: argparse.Namespace) -> Any:
    return admin.client_view(await admin.get_client(p, a.client_id))


async def _client_remove(p: Provider, a: argparse.Namespace) -> Any:
    await admin.remove_client(p, a.client_id)
    audit("admin.client_removed", client_id=a.client_id)
    return {"removed": a.client_id}


# ---- users (audit lines name the sub: usernames are personal data) ----

async def _user_add(p: Provider, a: argparse.Namespace) -> Any:
    user = await admin.add_user(p, a.username, read_password(a), a.email, a.roles)
    audit("admin.user_added", sub=user["sub"])
    return user


async def _user_passwd(p: Provider, a: argparse.Namespace) -> Any:
    user = await admin.set_password(p, a.username, read_password(a))
    audit("admin.user_password_set", sub=user["sub"])
    return user


async def _user_list(p: Provider, a: argparse.Namespace) -> Any:
    return [admin.user_view(u) for u in await p.store.users.list_users()]


async def _user_show(p: Provider, a: argparse.Namespace) -> Any:
    return admin.user_view(await admin.find_user(p, a.username))


async def _user_remove(p: Provider, a: argparse.Namespace) -> Any:
    sub = (await admin.find_user(p, a.username)).sub
    await admin.remove_user(p, a.username)
    audit("admin.user_removed", sub=sub)
    return {"removed": a.username}


async def _user_disable(p: Provider, a: argparse.Namespace) -> Any:
    user = await admin.set_disabled(p, a.username, True)
    audit("admin.user_disabled", sub=user["sub"])
    return user


async def _user_enable(p: Provider, a: argparse.Namespace) -> Any:
    user = await admin.set_disabled(p, a.username, False)
    audit("admin.user_enabled", sub=user["sub"])
    return user


async def _user_revoke(p: Provider, a: argparse.Namespace) -> Any:
    user = await admin.revoke_everywhere(p, a.username)
    audit("admin.user_signed_out", sub=user["sub"])
    return user


async def _user_import(p: Provider, a: argparse.Namespace) -> Any:
    try:
        rows, problems = await asyncio.to_thread(_read_csv, a.file)
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read {a.file}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None
    report = progress(f"hashing passwords ({p.passwords.processes} processes)")
    failures = by_line(problems + await import_users(p, rows, report))
    for failure in failures:
        print(f"tokensrv: {failure}", file=sys.stderr)
    result = {"imported": len(rows) - (len(failures) - len(problems)), "failed": len(failures)}
    return Failed(result) if failures else result


def _read_csv(path: str) -> tuple[list[Row], list[str]]:
    with open(path, encoding="utf-8", newline="") as source:
        return read_rows(source)


# ---- tokens, admin side (no HTTP: the store and keys/ directly) ----

async def _token_introspect(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.introspect_token(p, read_token(a))


async def _token_revoke(p: Provider, a: argparse.Namespace) -> Any:
    result = await admin.revoke_token(p, read_token(a))
    if result["revoked"]:
        audit("admin.token_revoked", token_type=result["token_type"], jti=result["jti"],
              client_id=result["client_id"])
    return result


async def _status(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.status(p)


ADMIN: dict[tuple[str, str | None], Callable[[Provider, argparse.Namespace], Awaitable[Any]]] = {
    ("keys", "list"): _keys_list, ("keys", "init"): _keys_init, ("keys", "rotate"): _keys_rotate,
    ("keys", "revoke"): _keys_revoke,
    ("client", "add"): _client_add, ("client", "list"): _client_list,
    ("client", "show"): _client_show, ("client", "remove"): _client_remove, ("client", "token"): _client_token,
    ("user", "add"): _user_add, ("user", "passwd"): _user_passwd, ("user", "list"): _user_list,
    ("user", "show"): _user_show, ("user", "remove"): _user_remove,
    ("user", "disable"): _user_disable, ("user", "enable"): _user_enable,
    ("user", "revoke"): _user_revoke, ("user", "import"): _user_import,
    ("token", "introspect"): _token_introspect, ("token", "revoke"): _token_revoke,
    ("status", None): _status,
}
