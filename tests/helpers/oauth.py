"""Small helpers for driving the token, revocation and introspection endpoints in tests."""
from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers.app import provider_of
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None

    @property
    def basic(self) -> dict[str, str]:
        return basic(self.client_id, self.secret or "")


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def add_client(client: TestClient, client_id: str = "svc", *, public: bool = False,
                     grant_types: Sequence[str] = ("client_credentials",), scopes: Sequence[str] = (),
                     audience: str | None = None, first_party: bool = False,
                     redirect_uris: Sequence[str] = ()) -> Registered:
    """A client registered the way the CLI does it."""
    created = await admin.add_client(
        provider_of(client), client_id, ClientMetadata(public=public, redirect_uris=redirect_uris,
        grant_types=grant_types, scope=scopes, audience=audience, first_party=first_party))
    return Registered(created["client_id"], created["client_secret"])


async def add_app(client: TestClient, client_id: str = "app", scopes: Sequence[str] = ("read", "write"),
                  grant_types: Sequence[str] = ("password", "refresh_token")) -> Registered:
    """A first-party client that may use the password grant and refresh."""
    return await add_client(client, client_id, grant_types=grant_types, scopes=scopes, first_party=True)


async def add_user(client: TestClient, username: str = "alice", password: str = PASSWORD,
                   roles: Sequence[str] = ("reader",)) -> dict[str, Any]:
    return await admin.add_user(provider_of(client), username, password, f"{username}@example.org", roles)


async def post(client: TestClient, path: str, data: dict[str, str], headers: dict[str, str] | None = None
               ) -> tuple[int, dict[str, Any], Any]:
    resp = await client.post(path, data=data, headers=headers or {})
    body = await resp.json() if resp.content_type == "application/json" else {}
    return resp.status, body, resp.headers


async def token(client: TestClient, app: Registered, **params: str) -> tuple[int, dict[str, Any], Any]:
    return await post(client, "/oauth2/token", params, app.basic)


async def login(client: TestClient, app: Registered, username: str = "alice", password: str = PASSWORD,
                **params: str) -> dict[str, Any]:
    """A successful password grant: the token response."""
    status, body, _ = await token(client, app, grant_type="password", username=username,
                                  password=password, **params)
    assert status == 200, body
    return body


async def refresh(client: TestClient, app: Registered, refresh_token: str, **params: str
                  ) -> tuple[int, dict[str, Any], Any]:
    return await token(client, app, grant_type="refresh_token", refresh_token=refresh_token, **params)


async def introspect(client: TestClient, caller: Registered, token_value: str, **params: str) -> dict[str, Any]:
    status, body, _ = await post(client, "/oauth2/introspect", {"token": token_value, **params},
                                 caller.basic)
    assert status == 200, body
    return body


async def revoke(client: TestClient, caller: Registered, token_value: str, **params: str) -> int:
    status, body, _ = await post(client, "/oauth2/revoke", {"token": token_value, **params}, caller.basic)
    assert status == 200, body
    return status


def _segment(access_token: str, index: int) -> dict[str, Any]:
    part = access_token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def claims_of(access_token: str) -> dict[str, Any]:
    """The claims, unverified: signatures are checked against the JWKS where that is the point."""
    return _segment(access_token, 1)


def header_of(access_token: str) -> dict[str, Any]:
    return _segment(access_token, 0)
