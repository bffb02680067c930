"""`tokensrv login --device`: tokensrv's own RFC 8628 client, for a terminal with no browser.

It finds the endpoints by discovery, asks for a device code as a registered public client
(`--client-id`, by default `tokensrv-cli`), prints where to go and the code to check on standard
error, polls the token endpoint at the interval the server gives (5 seconds more after each
`slow_down`, RFC 8628 §3.5), and prints the access token (or, with `--json`, the whole token
response) on standard output, for `TOKEN=$(tokensrv login --device)` or a pipe. It writes nothing
to disk: the tokens live in its memory and on its standard output only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

from tokensrv.cli.console import CLIError
from tokensrv.cli.parsing import Commands
from tokensrv.verify.json_limits import JSONRejected, parse_object
from tokensrv.verify.jwks import read_at_most

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_CLIENT_ID = "tokensrv-cli"
DEFAULT_ISSUER = "http://127.0.0.1:8080"
SLOW_DOWN_STEP = 5
TIMEOUT = aiohttp.ClientTimeout(total=30)
MAX_ANSWER = 64 * 1024  # bytes of a discovery document or token response: ours are far smaller


def add_parser(commands: Commands[Any]) -> None:
    """Not add_command: an HTTP client of the server, with no store, keys folder or settings."""
    device = commands.add_parser("login", help="sign in from this terminal (device grant, RFC 8628); "
                                 "prints an access token", description="sign in with a browser elsewhere; "
                                 "the token goes to standard output only, nothing is written to disk")
    device.add_argument("--device", action="store_true", required=True, help="the device flow (the only one)")
    device.add_argument("--issuer", help=f"the server (TOKENSRV_ISSUER, else {DEFAULT_ISSUER})")
    device.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="a public client with the device_code grant")
    device.add_argument("--scope", help="the scopes to ask for, space-separated")
    device.add_argument("--json", action="store_true", help="print the whole token response")


def login(args: argparse.Namespace) -> int:
    issuer = (args.issuer or os.environ.get("TOKENSRV_ISSUER") or DEFAULT_ISSUER).rstrip("/")
    try:
        tokens = asyncio.run(device_flow(issuer, args.client_id, args.scope))
    except aiohttp.ClientError as exc:
        raise CLIError(f"cannot talk to {issuer} ({type(exc).__name__})") from None
    print(json.dumps(tokens) if args.json else tokens["access_token"], flush=True)
    return 0


async def device_flow(issuer: str, client_id: str, scope: str | None) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        meta = await _json(await http.get(issuer + "/.well-known/oauth-authorization-server"))
        if meta.get("issuer") != issuer or "device_authorization_endpoint" not in meta:
            raise CLIError(f"{issuer} is not a tokensrv with the device grant (check --issuer)")
        form = {"client_id": client_id, **({"scope": scope} if scope else {})}
        started = await _json(await http.post(meta["device_authorization_endpoint"], data=form))
        if "error" in started:
            raise CLIError(f"the server refused the device sign-in: {started['error']} "
                           f"({started.get('error_description', '')})")
        print(f"To sign in, open {started.get('verification_uri_complete') or started['verification_uri']}\n"
              f"and check that it shows the code {started['user_code']}", file=sys.stderr, flush=True)
        return await _poll(http, meta["token_endpoint"], client_id, started)


async def _poll(http: aiohttp.ClientSession, token_endpoint: str, client_id: str,
                started: dict[str, Any]) -> dict[str, Any]:
    interval = int(started.get("interval", 5))
    deadline = time.monotonic() + int(started["expires_in"])
    form = {"grant_type": DEVICE_CODE, "device_code": started["device_code"], "client_id": client_id}
    while time.monotonic() < deadline:
        await asyncio.sleep(interval)  # RFC 8628 §3.5: wait the interval before every poll
        answer = await _json(await http.post(token_endpoint, data=form))
        error = answer.get("error")
        if error is None:
            return answer
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
        elif error != "authorization_pending":
            raise CLIError({"access_denied": "the sign-in was denied",
                            "expired_token": "the code expired before it was approved: run it again",
                            }.get(error, f"the server refused: {error}"))
    raise CLIError("the code expired before it was approved: run it again")


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    async with resp:
        raw = await read_at_most(resp.content, MAX_ANSWER)
    try:
        return parse_object(raw, max_bytes=MAX_ANSWER)
    except JSONRejected:
        raise CLIError(f"unexpected answer from {resp.url.origin()} (HTTP {resp.status})") from None
