"""Helpers for the browser flows: register apps and users, drive /oauth2/authorize and /login
with the test client's cookie jar standing in for the browser."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD  # the one password of the tests' users
from tests.helpers.ports import free_port
from tokensrv.admin import operations as admin
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.oauth.clients.fields import ClientMetadata

REDIRECT = "http://127.0.0.1:9000/cb"
LOGOUT_REDIRECT = "http://127.0.0.1:9000/bye"


@dataclass(frozen=True)
class App:
    client_id: str
    secret: str | None
    redirect_uri: str

    def auth(self) -> dict[str, str]:
        """Client authentication for the token endpoint: Basic, or client_id for a public client."""
        if self.secret is None:
            return {}
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def form(self) -> dict[str, str]:
        return {"client_id": self.client_id} if self.secret is None else {}


async def add_app(client: TestClient, client_id: str = "web", *, public: bool = True,
                  redirect_uris: Sequence[str] = (REDIRECT,), scopes: Sequence[str] = ("openid", "profile", "email"),
                  grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
                  post_logout_redirect_uris: Sequence[str] = (LOGOUT_REDIRECT,),
                  first_party: bool = False, require_par: bool = False) -> App:
    created = await admin.add_client(
        provider_of(client), client_id, ClientMetadata(public=public, redirect_uris=redirect_uris,
        grant_types=grant_types,
        scope=scopes, first_party=first_party,
        post_logout_redirect_uris=post_logout_redirect_uris, require_pushed_authorization_requests=require_par))
    return App(client_id, created["client_secret"], redirect_uris[0] if redirect_uris else "")


async def add_user(client: TestClient, username: str = "alice", password: str = PASSWORD,
                   email: str | None = "alice@example.org") -> dict[str, Any]:
    return await admin.add_user(provider_of(client), username, password, email, ("reader",))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@dataclass
class Flow:
    """One authorization request in progress."""
    app: App
    verifier: str
    state: str
    nonce: str


async def authorize(client: TestClient, app: App, **params: str) -> ClientResponse:
    query = {"client_id": app.client_id, "response_type": "code", "redirect_uri": app.redirect_uri}
    query.update(params)
    return await client.get("/oauth2/authorize", params=query, allow_redirects=False)


async def begin(client: TestClient, app: App, **params: str) -> tuple[Flow, ClientResponse]:
    verifier, challenge = pkce()
    flow = Flow(app, verifier, secrets.token_urlsafe(8), secrets.token_urlsafe(8))
    base = {"code_challenge": challenge, "code_challenge_method": "S256", "state": flow.state,
            "nonce": flow.nonce, "scope": "openid profile email"}
    resp = await authorize(client, app, **{**base, **params})
    return flow, resp


async def login_page(client: TestClient, location: str) -> tuple[str, str]:
    """GET the login page the authorize redirect points at: (request id, csrf token)."""
    assert urlsplit(location).path == "/login", location
    resp = await client.get(location, allow_redirects=False)
    assert resp.status == 200, await resp.text()
    return query_of(location)["request"], csrf_of(await resp.text())


async def submit(client: TestClient, request_id: str, csrf: str, username: str = "alice",
                 password: str = PASSWORD) -> ClientResponse:
    return await client.post("/login", data={"request": request_id, "csrf_token": csrf,
                                             "username": username, "password": password},
                             allow_redirects=False)


async def sign_in(client: TestClient, app: App, username: str = "alice", password: str = PASSWORD,
                  **params: str) -> tuple[Flow, dict[str, str]]:
    """Authorize, log in on the form unless the SSO session answers at once, and return the flow
    and the redirect's query (code, state, iss). A client that asks consent fails here: see consent()."""
    flow, resp = await begin(client, app, **params)
    assert resp.status == 303, await resp.text()
    if urlsplit(resp.headers["Location"]).path == "/login":
        request_id, csrf = await login_page(client, resp.headers["Location"])
        resp = await submit(client, request_id, csrf, username, password)
        assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(app.redirect_uri), location
    return flow, query_of(location)


async def consent(client: TestClient, location: str, decision: str = "allow") -> str:
    """Answer the consent page the browser was sent to (oauth/browser/consent.py): where it goes next."""
    assert urlsplit(location).path == "/consent", location
    html = await (await client.get(location)).text()
    resp = await client.post("/consent", data={"request": query_of(location)["request"], "csrf_token": csrf_of(html),
                                               "decision": decision}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return resp.headers["Location"]


async def redeem(client: TestClient, flow: Flow, code: str, **params: str) -> tuple[int, dict[str, Any]]:
    """POST the code to the token endpoint; `params` override (an empty value leaves one out)."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.app.redirect_uri,
            "code_verifier": flow.verifier, **flow.app.form()}
    data.update(params)
    data = {k: v for k, v in data.items() if v != ""}
    resp = await client.post("/oauth2/token", data=data, headers=flow.app.auth())
    return resp.status, await resp.json()


async def tokens_for(client: TestClient, app: App, **params: str) -> dict[str, Any]:
    flow, answer = await sign_in(client, app, **params)
    status, body = await redeem(client, flow, answer["code"])
    assert status == 200, body
    return body


def cookie(client: TestClient, name: str) -> str | None:
    """The value the test client's cookie jar (the "browser") holds for this cookie name."""
    for morsel in client.session.cookie_jar:
        if morsel.key == name:
            return morsel.value
    return None


def is_error_page(html: str) -> bool:
    return "<h1>Something went wrong</h1>" in html


@contextlib.asynccontextmanager
async def doomed_store(make_client: Any, settings: Any,
                       tmp_path: Path) -> AsyncIterator[tuple[TestClient, EmbeddedValkey]]:
    """A server on a Valkey of its own, which the test may stop to see the server fail closed."""
    store = EmbeddedValkey(tmp_path / "doomed", port=free_port(), appendonly=False)
    store.start()
    try:
        yield await make_client(settings, redis_url=store.url), store
    finally:
        store.stop()
