"""`tokensrv serve | keys | client | user`: flags and TOKENSRV_* -> Settings; errors are one line."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from redis.exceptions import RedisError

from . import admin
from .config import ConfigError, Settings, load_settings, redact_url
from .oauth import Provider
from .passwords import PasswordPool
from .rotation import KeyManager
from .store.redis import RedisStore


class CLIError(Exception):
    """One line on stderr and exit status 1."""


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too (argparse would print the whole usage first); --help still
    shows the usage. Subcommand parsers inherit this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # no abbreviations: `--password SECRET` must not pass for `--password-stdin`
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        unrecognized = "unrecognized arguments: "
        if message.startswith(unrecognized):  # name the options, never echo values (a password?)
            flags = [word for word in message[len(unrecognized):].split() if word.startswith("-")]
            message = unrecognized + (" ".join(flags) or "(values not shown)")
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tokensrv", description="OAuth 2.0 / OpenID Connect token server")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        sub.add_argument("--redis-url", help="the store (TOKENSRV_REDIS_URL)")
        sub.add_argument("--keys-dir", help="the signing-key folder (TOKENSRV_KEYS_DIR)")
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        return sub

    serve = command("serve", "run the server")
    serve.add_argument("--host")
    serve.add_argument("--port")
    serve.add_argument("--issuer")
    serve.add_argument("--workers")
    serve.add_argument("--embedded-store", metavar="DIR",
                       help="start the embedded Valkey with its data in DIR (what `make run` does)")

    keys = commands.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    command("list", "list the keys and their states", keys)
    command("init", "create the first keys if keys/ has none", keys)
    command("rotate", "start signing with the next key as soon as caches allow", keys)
    command("revoke", "take a compromised key out of the JWKS and signing now", keys).add_argument(
        "kid", metavar="KID")

    client = commands.add_parser("client", help="OAuth clients").add_subparsers(dest="action", required=True)
    add = command("add", "register a client; prints its secret once", client)
    add.add_argument("--id", required=True, dest="client_id")
    add.add_argument("--public", action="store_true", help="no secret (browser and native apps)")
    add.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris")
    add.add_argument("--grant-type", action="append", default=[], dest="grant_types")
    add.add_argument("--scope", action="append", default=[], dest="scopes")
    add.add_argument("--audience")
    add.add_argument("--first-party", action="store_true")
    add.add_argument("--post-logout-redirect-uri", action="append", default=[],
                     dest="post_logout_redirect_uris")
    command("list", "list clients", client)
    command("show", "show one client", client).add_argument("client_id", metavar="ID")
    command("remove", "remove a client", client).add_argument("client_id", metavar="ID")

    user = commands.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    uadd = command("add", "add a user; prints its sub", user)
    uadd.add_argument("username", metavar="USERNAME")
    uadd.add_argument("--email")
    uadd.add_argument("--role", action="append", default=[], dest="roles")
    uadd.add_argument("--password-stdin", action="store_true")
    passwd = command("passwd", "set a password; ends the user's sessions", user)
    passwd.add_argument("username", metavar="USERNAME")
    passwd.add_argument("--password-stdin", action="store_true")
    command("list", "list users", user)
    for name, text in (("show", "show a user"), ("disable", "disable a user and end its sessions"),
                       ("enable", "enable a user"), ("remove", "remove a user"),
                       ("revoke", "sign a user out everywhere")):
        command(name, text, user).add_argument("username", metavar="USERNAME")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name in
                 ("redis_url", "keys_dir", "host", "port", "issuer", "workers")}
    return load_settings(**overrides)


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        try:
            password = sys.stdin.readline().rstrip("\r\n")
        except UnicodeDecodeError:
            raise CLIError("the password on standard input is not valid text") from None
        if not password:
            raise CLIError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CLIError("no terminal to ask for the password: use --password-stdin")
    first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
    if first != second:
        raise CLIError("the passwords differ")
    return first


@asynccontextmanager
async def admin_provider(settings: Settings) -> AsyncIterator[Provider]:
    """A Provider for one admin command: the store (checked reachable) and the keys folder."""
    import time

    from .app import open_redis

    redis = open_redis(settings.redis_url)
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        raise CLIError(f"TOKENSRV_REDIS_URL: cannot reach the store at {redact_url(settings.redis_url)} "
                       f"({type(exc).__name__})") from None
    store = RedisStore(redis)
    passwords = PasswordPool(1)
    try:
        keys = KeyManager(settings, store, lambda: int(time.time()))
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


async def run_admin(args: argparse.Namespace, settings: Settings) -> Any:
    async with admin_provider(settings) as p:
        handler = ADMIN[(args.command, args.action)]
        return await handler(p, args)


async def _keys_list(p: Provider, args: argparse.Namespace) -> Any:
    await p.keys.reload(force=True)
    for problem in p.keys.ring.problems:
        print(problem, file=sys.stderr)
    return [admin.key_view(k) for k in p.keys.ring.keys]


async def _keys_init(p: Provider, args: argparse.Namespace) -> Any:
    await p.keys.reload(force=True)
    if p.keys.ring.signing is None:
        await p.keys.tick()
    return await _keys_list(p, args)


async def _keys_rotate(p: Provider, args: argparse.Namespace) -> Any:
    await admin.rotate_keys(p)
    return await _keys_list(p, args)


async def _keys_revoke(p: Provider, args: argparse.Namespace) -> Any:
    await admin.revoke_key(p, args.kid)
    return await _keys_list(p, args)


async def _client_add(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.add_client(
        p, a.client_id, public=a.public, redirect_uris=a.redirect_uris, grant_types=a.grant_types,
        scopes=a.scopes, audience=a.audience, first_party=a.first_party,
        post_logout_redirect_uris=a.post_logout_redirect_uris)


async def _client_list(p: Provider, a: argparse.Namespace) -> Any:
    return [{k: v for k, v in admin.client_view(c).items() if k in ("client_id", "type", "grant_types", "scopes", "audience", "first_party")}
            for c in await p.store.list_clients()]


async def _client_show(p: Provider, a: argparse.Namespace) -> Any:
    return admin.client_view(await admin.get_client(p, a.client_id))


async def _client_remove(p: Provider, a: argparse.Namespace) -> Any:
    await admin.remove_client(p, a.client_id)
    return {"removed": a.client_id}


async def _user_add(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.add_user(p, a.username, read_password(a), a.email, a.roles)


async def _user_passwd(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.set_password(p, a.username, read_password(a))


async def _user_list(p: Provider, a: argparse.Namespace) -> Any:
    return [admin.user_view(u) for u in await p.store.list_users()]


async def _user_show(p: Provider, a: argparse.Namespace) -> Any:
    return admin.user_view(await admin.find_user(p, a.username))


async def _user_remove(p: Provider, a: argparse.Namespace) -> Any:
    await admin.remove_user(p, a.username)
    return {"removed": a.username}


async def _user_disable(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.set_disabled(p, a.username, True)


async def _user_enable(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.set_disabled(p, a.username, False)


async def _user_revoke(p: Provider, a: argparse.Namespace) -> Any:
    return await admin.revoke_everywhere(p, a.username)


ADMIN: dict[tuple[str, str], Callable[[Provider, argparse.Namespace], Awaitable[Any]]] = {
    ("keys", "list"): _keys_list, ("keys", "init"): _keys_init, ("keys", "rotate"): _keys_rotate,
    ("keys", "revoke"): _keys_revoke,
    ("client", "add"): _client_add, ("client", "list"): _client_list,
    ("client", "show"): _client_show, ("client", "remove"): _client_remove,
    ("user", "add"): _user_add, ("user", "passwd"): _user_passwd, ("user", "list"): _user_list,
    ("user", "show"): _user_show, ("user", "remove"): _user_remove,
    ("user", "disable"): _user_disable, ("user", "enable"): _user_enable,
    ("user", "revoke"): _user_revoke,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .server import serve
            return serve(args)
        settings = settings_from(args)
        emit(asyncio.run(run_admin(args, settings)), args.json)
        return 0
    except (ConfigError, CLIError, admin.AdminError) as exc:
        print(f"tokensrv: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except RedisError as exc:  # the store went away after the first ping; its text stays out
        print(f"tokensrv: error: the store failed ({type(exc).__name__}); try again", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
