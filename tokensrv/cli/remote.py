"""The admin commands through the admin API (`--server URL`) instead of the store: an HTTP client
that gets one access token for the command (client_credentials with the admin scope, the
client authenticated by a secret read from an environment variable or by a private_key_jwt
assertion), calls the routes, and turns every failure into one line (CLIError).

The token lives in this process's memory for the one command and is never written anywhere. The
secret is read from the environment, never from the command line (argv shows in `ps`). Plain http
is refused but for loopback: the secret and the bearer token would cross the network in clear
(put TLS in front of the admin listener for another host). Redirects are not followed, so neither
leaves for a host the operator did not name.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from tokensrv.cli.console import CLIError
from tokensrv.verify.json_limits import JSONRejected, parse
from tokensrv.verify.jwks import read_at_most

SERVER_ENV, CLIENT_ID_ENV, SECRET_ENV = "TOKENSRV_SERVER", "TOKENSRV_ADMIN_CLIENT_ID", "TOKENSRV_ADMIN_CLIENT_SECRET"
TOKEN_ENDPOINT_ENV = "TOKENSRV_TOKEN_ENDPOINT"
# what the CLI reads from the environment in remote mode: the client's, not server settings (config/)
ENVIRONMENT = (SERVER_ENV, CLIENT_ID_ENV, SECRET_ENV, TOKEN_ENDPOINT_ENV)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# bounded: a server that stops answering does not hang a CI job
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
MAX_ANSWER = 16 * 1024 * 1024  # bytes of one answer: `user list` of ~50k users fits
MAX_KEY_FILE = 64 * 1024
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_ALGORITHM = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}  # of a --private-key, as the server allows them


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of remote mode, on every admin command (dests apart from `client_id`, which is the
    `client show ID` argument)."""
    group = parser.add_argument_group("through the admin API (instead of the store)")
    group.add_argument("--server", metavar="URL", help="the admin listener's base URL, e.g. https://tokensrv-admin"
                       ".example.org (TOKENSRV_SERVER); the command acts through the admin API")
    group.add_argument("--client-id", dest="admin_client_id", metavar="ID", help="the admin client to act as "
                       "(TOKENSRV_ADMIN_CLIENT_ID)")
    group.add_argument("--client-secret-env", metavar="NAME", help=f"the environment variable holding its secret "
                       f"(default {SECRET_ENV}; never the secret itself: the command line shows in ps)")
    group.add_argument("--private-key", metavar="FILE", help="authenticate with private_key_jwt instead: the "
                       "client's private key (PEM or JWK)")
    group.add_argument("--token-endpoint", metavar="URL", help="the token endpoint to authenticate at "
                       "(TOKENSRV_TOKEN_ENDPOINT); needed when it is on another host than --server")


def server_of(args: argparse.Namespace) -> str | None:
    """The admin API's base URL when the command goes through it (--server, else TOKENSRV_SERVER)."""
    return getattr(args, "server", None) or os.environ.get(SERVER_ENV) or None


@dataclass(frozen=True)
class Credentials:
    server: str  # the base URL, no trailing slash
    client_id: str
    secret: str | None  # client_secret_basic ...
    key: RSAKey | ECKey | OKPKey | None  # ... or private_key_jwt
    token_endpoint: str | None = None  # named by the operator: used instead of the one GET /admin/ names


def credentials(args: argparse.Namespace, server: str) -> Credentials:
    server = checked_url(server.rstrip("/"), "--server")
    named = getattr(args, "token_endpoint", None) or os.environ.get(TOKEN_ENDPOINT_ENV) or None
    endpoint = checked_url(named, "--token-endpoint") if named else None
    client_id = args.admin_client_id or os.environ.get(CLIENT_ID_ENV)
    if not client_id:
        raise CLIError("--server needs --client-id (or TOKENSRV_ADMIN_CLIENT_ID): the admin client to act as")
    if args.private_key:
        return Credentials(server, client_id, None, read_key(args.private_key), endpoint)
    name = args.client_secret_env or SECRET_ENV
    secret = os.environ.get(name)
    if not secret:
        raise CLIError(f"no secret for client {client_id!r}: set {name} (or give --private-key FILE)")
    return Credentials(server, client_id, secret, None, endpoint)


def checked_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise CLIError(f"{name} {url!r}: https only (http for loopback): the secret and token would travel in clear")
    return url


def read_key(path: str) -> RSAKey | ECKey | OKPKey:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise CLIError(f"cannot read the key file {path!r}: {exc.strerror}") from None
    try:
        data = parse(raw, max_bytes=MAX_KEY_FILE) if raw.lstrip().startswith(b"{") else raw
        with warnings.catch_warnings():  # the key type is read from the file: that is the point
            warnings.simplefilter("ignore", SecurityWarning)
            key = import_key(data)
    except (JSONRejected, JoseError, ValueError, TypeError) as exc:
        raise CLIError(f"the key file {path!r} is not a private key we read (PEM or JWK): {type(exc).__name__}") \
            from None
    if not isinstance(key, RSAKey | ECKey | OKPKey) or not key.is_private:
        raise CLIError(f"the key file {path!r} holds no private RSA, EC or OKP key")
    return key


def path_of(*parts: str) -> str:
    """/admin/a/b with each part quoted whole: a username with / or ? stays one segment."""
    return "/admin/" + "/".join(quote(part, safe="") for part in parts)


class AdminAPI:
    """One command's client of the admin API: the token is asked for once, at the first call."""

    def __init__(self, http: aiohttp.ClientSession, creds: Credentials) -> None:
        self.http, self.creds = http, creds
        self._token: str | None = None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """The route's JSON answer (None for 204); any failure is a CLIError of one line."""
        token = self._token or await self._fetch_token()
        self._token = token
        url = self.creds.server + path
        status, answer = await self._send(method, url, headers={"Authorization": f"Bearer {token}"},
                                          json_body=body)
        if status >= 400:
            raise CLIError(failure(status, answer, self.creds.client_id, url))
        return answer

    async def _fetch_token(self) -> str:
        status, about = await self._send("GET", self.creds.server + "/admin/")
        # where to get a token, and the admin scope to ask for by its name (explicitly: a token
        # request without it does not get it)
        endpoint, scope = (about.get("token_endpoint"), about.get("scope")) if status == 200 and \
            isinstance(about, dict) else (None, None)
        if not isinstance(endpoint, str) or not isinstance(scope, str):
            raise CLIError(f"{self.creds.server} is not a tokensrv admin listener (GET /admin/ answered "
                           f"HTTP {status}): check --server")
        endpoint = self._endpoint(endpoint)
        form = {"grant_type": "client_credentials", "scope": scope}
        headers = None
        if self.creds.key is not None:
            form |= {"client_assertion_type": ASSERTION_TYPE, "client_id": self.creds.client_id,
                     "client_assertion": assertion(self.creds.key, self.creds.client_id, endpoint)}
        else:
            pair = f"{quote(self.creds.client_id, safe='')}:{quote(self.creds.secret or '', safe='')}"
            headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        status, answer = await self._send("POST", endpoint, headers=headers, form=form)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(token, str):
            raise CLIError(failure(status, answer, self.creds.client_id, endpoint))
        return token

    def _endpoint(self, named: str) -> str:
        """Where the credentials go: the operator's --token-endpoint, else the index's own when it is on
        --server's host (scheme and host; the ports of the public and admin listeners differ). An
        unauthenticated GET /admin/ must not send the secret to a host the operator did not name."""
        if self.creds.token_endpoint:
            return self.creds.token_endpoint
        endpoint, server = urlsplit(checked_url(named, "the server's token_endpoint")), urlsplit(self.creds.server)
        if (endpoint.scheme, endpoint.hostname) != (server.scheme, server.hostname):
            raise CLIError(f"the server's token_endpoint {origin(named)} is not on --server's host: pass "
                           "--token-endpoint URL (or TOKENSRV_TOKEN_ENDPOINT) if it is the right one")
        return named

    async def _send(self, method: str, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None,
                    form: dict[str, str] | None = None) -> tuple[int, Any]:
        try:
            async with self.http.request(method, url, headers=headers, json=json_body, data=form,
                                         allow_redirects=False) as resp:
                raw = await read_at_most(resp.content, MAX_ANSWER)
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise CLIError(f"cannot reach {origin(url)} ({reason(exc)})") from None
        except TimeoutError:
            raise CLIError(f"{origin(url)} did not answer within {TIMEOUT.total:.0f} s") from None
        except aiohttp.ClientError as exc:
            raise CLIError(f"the connection to {origin(url)} failed ({type(exc).__name__})") from None
        return status, answer_of(status, raw, url)


def answer_of(status: int, raw: bytes, url: str) -> Any:
    if status == 204 or (not raw and status < 400):
        return None
    if len(raw) > MAX_ANSWER:
        raise CLIError(f"{origin(url)} answered more than {MAX_ANSWER // (1024 * 1024)} MiB")
    try:
        return parse(raw, max_bytes=MAX_ANSWER)
    except JSONRejected:
        raise CLIError(f"{origin(url)} answered HTTP {status} with something other than JSON: "
                       "is --server the admin listener?") from None


def failure(status: int, answer: Any, client_id: str, url: str) -> str:
    """One line for an HTTP error: what the operator should check first, then the server's words."""
    error = _printable(answer.get("error")) if isinstance(answer, dict) else None
    described = _printable(answer.get("error_description")) if isinstance(answer, dict) else None
    said = f" ({error}: {described})" if error and described else f" ({error})" if error else ""
    if error == "invalid_client" or (status == 401 and "/admin/" not in url):
        return (f"the server refused client {client_id!r}: its secret or key is wrong, or it does not exist"
                f"{said}")
    if error in ("invalid_scope", "unauthorized_client", "insufficient_scope") or status == 403:
        return (f"client {client_id!r} is not an admin client (mark it with `tokensrv client update "
                f"{client_id} --admin`){said}")
    if status == 401:
        return f"the server refused the admin token of client {client_id!r}{said}"
    if isinstance(described, str) and described:
        return _one_line(described)
    if isinstance(error, str) and error:
        return f"{error} (HTTP {status})"
    if 300 <= status < 400:
        return f"{origin(url)} redirected (HTTP {status}): give --server the admin listener's own URL"
    return f"{origin(url)} answered HTTP {status}"


def _printable(value: Any) -> Any:
    """The server's words without control characters (an escape sequence would drive the terminal)."""
    if not isinstance(value, str):
        return value
    return "".join(c if c.isprintable() else " " for c in value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def assertion(key: RSAKey | ECKey | OKPKey, client_id: str, token_endpoint: str) -> str:
    """RFC 7523 §3: a short-lived JWT naming us as iss and sub, the token endpoint as aud."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_endpoint, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16)}
    alg = _ALGORITHM[key.key_type]
    header = {"alg": alg, **({"kid": key.kid} if key.kid else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc calls EdDSA deprecated (Ed25519 it means)
        return jwt.encode(header, claims, key, algorithms=[alg])


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def reason(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not trusted"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return "TLS failed"
    error = exc.os_error
    if error.errno and error.errno > 0:  # "Connection refused", not asyncio's "Connect call failed (...)"
        return os.strerror(error.errno)
    return error.strerror or type(error).__name__  # a name that does not resolve


def session() -> aiohttp.ClientSession:
    # TLS verified (aiohttp's default context: the system's trusted CAs); no cookies kept
    return aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar(),
                                 json_serialize=json.dumps)


def leaves(parsers: Iterable[argparse.ArgumentParser]) -> Iterable[argparse.ArgumentParser]:
    """The command parsers under `parsers` (those with no subcommands of their own)."""
    for parser in parsers:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield parser
        for sub in subs:
            yield from leaves(sub.choices.values())
