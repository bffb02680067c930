"""The admin API in tests: the app with its admin listener on a free port, an admin client and
its token, and JSON calls to the listener (a real HTTP connection to it, as an operator's)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.helpers.app import provider_of
from tests.helpers.oauth import Registered, token
from tests.helpers.ports import free_port
from tokensrv.admin import operations as admin
from tokensrv.config import Settings
from tokensrv.oauth.clients.fields import ClientMetadata


@dataclass
class AdminAPI:
    public: TestClient  # the public listener (the token endpoint)
    base: str  # http://127.0.0.1:PORT of the admin listener
    http: aiohttp.ClientSession
    bearer: str = ""

    async def call(self, method: str, path: str, body: Any = None, token_value: str | None = None,
                   **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        """(status, the JSON answer or None, the response)."""
        headers = dict(kwargs.pop("headers", {}))
        bearer = self.bearer if token_value is None else token_value
        if bearer:
            headers.setdefault("Authorization", f"Bearer {bearer}")
        if body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as response:
            raw = await response.read()
            data = await response.json(content_type=None) if raw else None
            return response.status, data, response


async def add_admin_client(public: TestClient, client_id: str = "ops", **metadata: Any) -> Registered:
    metadata.setdefault("grant_types", ("client_credentials",))
    created = await admin.add_client(provider_of(public), client_id, ClientMetadata(admin=True, **metadata))
    return Registered(client_id, created.get("client_secret"))


async def admin_token(public: TestClient, caller: Registered, scope: str = "tokensrv:admin") -> str:
    status, body, _ = await token(public, caller, grant_type="client_credentials", scope=scope)
    assert status == 200, body
    return str(body["access_token"])


async def start_admin_api(make_client: Callable[..., Any], settings: Settings,
                          http: aiohttp.ClientSession) -> AdminAPI:
    """The server with its admin listener, an admin client `ops` and a token of it."""
    port = free_port()
    public = await make_client(settings, admin_port=port)
    api = AdminAPI(public, f"http://127.0.0.1:{port}", http)
    api.bearer = await admin_token(public, await add_admin_client(public))
    return api
