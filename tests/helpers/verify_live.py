"""Helpers for the end-to-end tests of tokensrv.verify: a live server's CLI and HTTP API."""
from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from tests.helpers.live import LiveServer
from tests.helpers.oauth import PASSWORD  # the one password of the tests' users
from tokensrv.verify import TokenVerifier
from tokensrv.verify.jws import b64url_decode

DEADLINE = 30.0


async def cli(server: LiveServer, *args: str, input: str | None = None, **env: str) -> Any:
    """`tokensrv ARGS --json` against the server's store and keys (off the event loop)."""
    server_env = server.env
    if env:
        server.env = {**server.env, **env}
    try:
        result = await asyncio.to_thread(server.cli, *args, "--json", input=input)
    finally:
        server.env = server_env
    return json.loads(result.stdout) if result.stdout.strip() else None


def payload(token: str) -> dict[str, Any]:
    return dict(json.loads(b64url_decode(token.split(".")[1])))


def header(token: str) -> dict[str, Any]:
    return dict(json.loads(b64url_decode(token.split(".")[0])))


class Tokensrv:
    """One confidential first-party client of a live server, talking HTTP."""

    def __init__(self, server: LiveServer, session: aiohttp.ClientSession, client_id: str, secret: str) -> None:
        self.server, self.session = server, session
        self.auth = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, Any]:
        async with self.session.post(self.server.url + path, data=form, headers=self.auth) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body

    async def token(self, **form: str) -> dict[str, Any]:
        status, body = await self.post("/oauth2/token", form)
        assert status == 200, body
        return dict(body)

    async def service_token(self) -> str:
        return str((await self.token(grant_type="client_credentials"))["access_token"])

    async def user_login(self, scope: str = "orders:read") -> dict[str, Any]:
        return await self.token(grant_type="password", username="alice", password=PASSWORD, scope=scope)

    async def revoke(self, token: str) -> None:
        status, body = await self.post("/oauth2/revoke", {"token": token})
        assert status == 200, body


async def register(server: LiveServer, session: aiohttp.ClientSession) -> Tokensrv:
    created = await cli(server, "client", "add", "--id", "web", "--first-party", "--audience", "orders",
                        "--grant-type", "client_credentials", "--grant-type", "password",
                        "--scope", "openid", "--scope", "orders:read")
    await cli(server, "user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    return Tokensrv(server, session, created["client_id"], created["client_secret"])


def verifier_of(server: LiveServer, **options: Any) -> TokenVerifier:
    return TokenVerifier(server.url, "orders", registry=CollectorRegistry(), **options)




