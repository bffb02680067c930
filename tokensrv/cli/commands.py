"""The admin commands behind `tokensrv keys | client | user | token | status`: each group's parser
(add_*_parser, assembled by cli/main.py build_parser) next to its handlers."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError

from tokensrv.admin import operations as admin
from tokensrv.cli import client_update, remote, remote_commands, user_claims
from tokensrv.cli.client_flags import CLIENT_FLAGS, client_flag
from tokensrv.cli.console import CLIError, as_given, read_password, read_token, settings_from
from tokensrv.cli.output import client_rows, emit, print_status, print_view, progress
from tokensrv.cli.parsing import Commands, add_command, add_group
from tokensrv.cli.user_import import Row, by_line, import_users, read_rows
from tokensrv.cli.values import duration, read_jwks
from tokensrv.config import Settings, redact_url
from tokensrv.keys.manager import KeyManager
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.observability import events
from tokensrv.observability.logs import audit, setup_logging
from tokensrv.passwords import PasswordPool
from tokensrv.store.connect import open_redis
from tokensrv.store.redis import RedisStore
from tokensrv.store.server_version import store_version_problem


def run_command(args: argparse.Namespace) -> int:
    """Run one admin command; errors are one line on stderr and status 1."""
    settings = settings_from(args)
    # audit lines (and key rotation steps) go to stderr: stdout stays the command's answer
    setup_logging(settings.log_format, logger="tokensrv")
    server = remote.server_of(args)
    try:
        result = asyncio.run(remote_commands.run(args, server) if server else run_admin(args, settings))
    except remote_commands.NotRemote as exc:
        print(f"tokensrv {exc}: not available with --server", file=sys.stderr)
        return 2
    except (CLIError, admin.AdminError) as exc:
        print(f"tokensrv: error: {as_given(str(exc), args)}", file=sys.stderr)
        return 1
    except RedisError as exc:  # the store went away after the first ping; its text stays out
        print(f"tokensrv: error: the store failed ({type(exc).__name__}); try again", file=sys.stderr)
        return 1
    if isinstance(result, Failed):
        emit(result.result, args.json)
        return 1
    if args.command == "status" and not args.json:
        print_status(result)
    elif "show" in (getattr(args, "action", None), getattr(args, "mfa_action", None)) and not args.json:
        print_view(result)
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
        too_old = await store_version_problem(redis)
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise CLIError(f"TOKENSRV_REDIS_URL: cannot reach the store at {redact_url(settings.redis_url)} "
                       f"({type(exc).__name__})") from None
    if too_old:
        await redis.aclose()
        raise CLIError(f"TOKENSRV_REDIS_URL: {too_old} ({redact_url(settings.redis_url)})")
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


async def run_admin(args: argparse.Namespace, settings: Settings) -> Any:
    processes = cores() if (args.command, getattr(args, "action", None)) == ("user", "import") else 1
    async with admin_provider(settings, processes) as p:
        handler = ADMIN[(args.command, getattr(args, "action", None))]
        return await handler(p, args)


# ---- keys ----

def add_keys_parser(commands: Commands[Any]) -> None:
    keys = add_group(commands, "keys", "signing keys")
    add_command(keys, "list", "list the keys and their states")
    add_command(keys, "init", "create the first keys if keys/ has none")
    add_command(keys, "rotate", "start signing with the next key as soon as caches allow")
    add_command(keys, "revoke", "take a compromised key out of the JWKS and signing now").add_argument(
        "kid", metavar="KID", help="the key's id, as `keys list` shows it")


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

def add_client_parser(commands: Commands[Any]) -> None:
    client = add_group(commands, "client", "OAuth clients")
    add = add_command(client, "add", "register a client; prints its secret once")
    add.add_argument("--id", required=True, dest="client_id", help="the client_id: 1-128 letters, digits or . _ ~ -")
    for field, (flag, options) in CLIENT_FLAGS.items():
        add.add_argument(flag, dest=field, **options)
    mint = add_command(client, "token", "mint an initial access token for dynamic registration (RFC 7591, "
                       "TOKENSRV_REGISTRATION=on); prints it once")
    mint.add_argument("--ttl", default="1h", help="how long it lives: seconds, or a number with s, m, h or d "
                      "(default 1h, at most 30d)")
    mint.add_argument("--uses", type=int, default=1, help="how many clients it may register (default 1)")
    add_command(client, "list", "list clients")
    for name, text in (("show", "show one client"), ("remove", "remove a client")):
        add_command(client, name, text).add_argument("client_id", metavar="ID", help="the client's id")
    client_update.add_parsers(client)


async def _client_add(p: Provider, a: argparse.Namespace) -> Any:
    result = await admin.add_client(p, a.client_id, metadata_from_args(a), client_flag)
    audit("admin.client_added", client_id=a.client_id, public=a.public, admin=a.admin)
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


async def _client_list(p: Provider, a: argparse.Namespace) -> Any:
    return client_rows([admin.client_view(c) for c in await p.store.clients.list_clients()])


async def _client_show(p: Provider, a: argparse.Namespace) -> Any:
    return admin.client_view(await admin.get_client(p, a.client_id))


async def _client_remove(p: Provider, a: argparse.Namespace) -> Any:
    await admin.remove_client(p, a.client_id)
    audit("admin.client_removed", client_id=a.client_id)
    return {"removed": a.client_id}


# ---- users (audit lines name the sub: usernames are personal data) ----

PASSWORD_STDIN = "read the password from standard input (else it is asked for twice on the terminal)"


def add_user_parser(commands: Commands[Any]) -> None:
    user = add_group(commands, "user", "users")
    add = add_command(user, "add", "add a user; prints its sub")
    add.add_argument("username", metavar="USERNAME", help="how the user signs in (not the sub)")
    add.add_argument("--email", help="the user's email address")
    add.add_argument("--role", action="append", default=[], dest="roles", help="a role (repeatable)")
    user_claims.add_claim_flags(add)
    add.add_argument("--password-stdin", action="store_true", help=PASSWORD_STDIN)
    passwd = add_command(user, "passwd", "set a password; ends the user's sessions")
    passwd.add_argument("username", metavar="USERNAME", help="the user's username")
    passwd.add_argument("--password-stdin", action="store_true", help=PASSWORD_STDIN)
    add_command(user, "list", "list users")
    user_claims.add_update_parser(user)
    add_command(user, "import", "add users from a CSV file: username,password[,email,roles,groups] (roles and "
                "groups separated by spaces or semicolons; a header row is allowed, and names attribute columns after "
                "these)").add_argument("file", metavar="FILE", help="the CSV file")
    for name, text in (("show", "show a user"), ("disable", "disable a user and end its sessions"),
                       ("enable", "enable a user"), ("remove", "remove a user"),
                       ("revoke", "sign a user out everywhere")):
        add_command(user, name, text).add_argument("username", metavar="USERNAME", help="the user's username")
    consents = add_command(user, "consents", "the applications a user allowed on the consent page; with "
                           "--revoke, withdraw one (its refresh tokens of the user end too)")
    consents.add_argument("username", metavar="USERNAME", help="the user's username")
    consents.add_argument("--revoke", metavar="CLIENT_ID", help="withdraw this client's consent")
    # not add_group: its `action` would be overwritten by the subcommand's; ADMIN finds ("user", "mfa")
    mfa: Commands[Any] = user.add_parser("mfa", help="a user's second factors (TOTP, passkeys)").add_subparsers(
        dest="mfa_action", required=True)
    for name, text in (("show", "whether a user has TOTP, how many recovery codes are left, and its passkeys"),
                       ("reset", "remove a user's TOTP, recovery codes and passkeys (a lost phone), end its sessions")):
        add_command(mfa, name, text).add_argument("username", metavar="USERNAME", help="the user's username")


async def _user_add(p: Provider, a: argparse.Namespace) -> Any:
    user = await admin.add_user(p, a.username, read_password(a), a.email, a.roles, a.groups, dict(a.attributes))
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


async def _user_mfa(p: Provider, a: argparse.Namespace) -> Any:
    """`tokensrv user mfa show|reset USERNAME` (its parser's `action` is the mfa subcommand)."""
    if a.mfa_action == "show":
        return await admin.second_factor_view(p, a.username)
    result = await admin.reset_second_factor(p, a.username)
    events.second_factor_reset(result["sub"])
    return result


async def _user_consents(p: Provider, a: argparse.Namespace) -> Any:
    if a.revoke is None:
        return await admin.consents_view(p, a.username)
    result = await admin.withdraw_consent(p, a.username, a.revoke)
    events.consent_changed("withdrawn", result["sub"], "", client_id=a.revoke)
    return result


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

def add_token_parser(commands: Commands[Any]) -> None:
    token = add_group(commands, "token", "look at or revoke one token (no HTTP: the store and keys/ directly)")
    for name, text in (("introspect", "show what introspection says about a token"),
                       ("revoke", "revoke a token (a refresh token: its whole family)")):
        add_command(token, name, text).add_argument(
            "token", metavar="TOKEN", help="the token, or - to read it from standard input (prefer -: "
            "a token on the command line stays in the shell history and is visible in ps)")


async def _token_introspect(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.introspect_token(p, read_token(a))


async def _token_revoke(p: Provider, a: argparse.Namespace) -> Any:
    result = await admin.revoke_token(p, read_token(a))
    if result["revoked"]:
        audit("admin.token_revoked", token_type=result["token_type"], jti=result["jti"],
              client_id=result["client_id"])
    return result


def add_status_parser(commands: Commands[Any]) -> None:
    add_command(commands, "status", "the store, the keys, the next rotation step, counts of clients and users")


async def _status(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.status(p)


ADMIN: dict[tuple[str, str | None], Callable[[Provider, argparse.Namespace], Awaitable[Any]]] = {
    ("keys", "list"): _keys_list, ("keys", "init"): _keys_init, ("keys", "rotate"): _keys_rotate,
    ("keys", "revoke"): _keys_revoke,
    ("client", "add"): _client_add, ("client", "list"): _client_list,
    ("client", "show"): _client_show, ("client", "remove"): _client_remove, ("client", "token"): _client_token,
    ("client", "update"): client_update.client_update, ("client", "rotate-secret"): client_update.client_rotate_secret,
    ("user", "add"): _user_add, ("user", "passwd"): _user_passwd, ("user", "list"): _user_list,
    ("user", "show"): _user_show, ("user", "remove"): _user_remove,
    ("user", "disable"): _user_disable, ("user", "enable"): _user_enable,
    ("user", "update"): user_claims.user_update,
    ("user", "revoke"): _user_revoke, ("user", "import"): _user_import, ("user", "mfa"): _user_mfa,
    ("user", "consents"): _user_consents,
    ("token", "introspect"): _token_introspect, ("token", "revoke"): _token_revoke,
    ("status", None): _status,
    ("claims", "show"): user_claims.claims_show, ("claims", "set"): user_claims.claims_set,
    ("claims", "clear"): user_claims.claims_clear,
}
