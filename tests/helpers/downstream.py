"""The framework examples of examples/downstream behind their frameworks' own test clients, and a
live tokensrv to get their tokens from (over HTTP, as `curl` would) and to revoke them with (the CLI).

Each `Service` answers `get` and `post` as (status, WWW-Authenticate challenges, body) whatever its
framework, so one test runs against all three."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from tests.helpers.dpop import DPoPKey
from tests.helpers.live import LiveServer
from tests.helpers.oauth import PASSWORD
from tokensrv.verify import TokenVerifier

AUDIENCE = "orders"


@dataclass
class Answer:
    status: int
    challenges: list[str]
    body: Any


class Service(Protocol):
    base_url: str  # what the framework's test client says the request's URL is (a DPoP proof's htu)

    @property
    def verifier(self) -> TokenVerifier:
        """Its verifier, to read its metrics."""

    @property
    def ended_sessions(self) -> list[str]:
        """What the example's back-channel logout receiver recorded."""

    def get(self, path: str, headers: dict[str, str]) -> Answer: ...

    def post_form(self, path: str, form: dict[str, str]) -> Answer: ...


class Issuer:
    """A live tokensrv with a first-party confidential client `orders` (the service's own client
    id, so logout tokens are addressed to it) and the user alice."""

    def __init__(self, server: LiveServer, backchannel_logout_uri: str | None = None) -> None:
        self.server = server
        extra = [] if backchannel_logout_uri is None else ["--backchannel-logout-uri", backchannel_logout_uri]
        created = json.loads(server.cli(
            "client", "add", "--id", AUDIENCE, "--first-party", "--audience", AUDIENCE, "--grant-type", "password",
            "--scope", "openid", "--scope", "orders:read", "--scope", "orders:write", *extra, "--json").stdout)
        self.secret = created["client_secret"]
        server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")

    def tokens(self, scope: str = "orders:read", dpop: DPoPKey | None = None, now: float = 0.0) -> dict[str, Any]:
        """alice's tokens for `scope` (password grant); DPoP-bound with a proof of `dpop`'s key."""
        url = self.server.url + "/oauth2/token"
        form = {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": scope}
        request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{AUDIENCE}:{self.secret}".encode()).decode())
        if dpop is not None:
            request.add_header("DPoP", dpop.proof("POST", url, now))
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return dict(json.load(resp))
        except urllib.error.HTTPError as exc:
            with exc:
                raise AssertionError(f"token request refused: {exc.code} {exc.read()!r}") from None

    def token(self, scope: str = "orders:read") -> str:
        return str(self.tokens(scope)["access_token"])

    def revoke(self, token: str) -> None:
        """`tokensrv token revoke -`, as an operator would."""
        self.server.cli("token", "revoke", "-", input=token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verifier_options(server: LiveServer) -> dict[str, Any]:
    """The verifier of a service in front of `server`, following its revocations, with its own
    metrics registry (so its request count is its own)."""
    return {"issuer": server.url, "audience": AUDIENCE, "redis_url": server.redis_url,
            "registry": CollectorRegistry()}


# ---- the three frameworks ----

class FastAPIService:
    base_url = "http://testserver"

    def __init__(self, client: Any, verifier: TokenVerifier, app: Any) -> None:
        self.client, self._verifier, self.app = client, verifier, app

    @property
    def verifier(self) -> TokenVerifier:
        return self._verifier

    @property
    def ended_sessions(self) -> list[str]:
        return list(self.app.state.ended_sessions)

    def get(self, path: str, headers: dict[str, str]) -> Answer:
        return self._answer(self.client.get(path, headers=headers))

    def post_form(self, path: str, form: dict[str, str]) -> Answer:
        return self._answer(self.client.post(path, data=form))

    @staticmethod
    def _answer(resp: Any) -> Answer:
        body = resp.json() if resp.content else None
        if isinstance(body, dict) and isinstance(body.get("detail"), dict):
            body = body["detail"]  # FastAPI's HTTPException body: {"detail": {"error", "error_description"}}
        return Answer(resp.status_code, resp.headers.get_list("www-authenticate"), body)


@contextmanager
def fastapi_service(server: LiveServer) -> Iterator[Service]:
    from starlette.testclient import TestClient

    from examples.downstream.fastapi_app import create_app
    from tokensrv.verify.fastapi import TokenAuth
    auth = TokenAuth(**verifier_options(server), realm="orders")
    app = create_app(auth)
    with TestClient(app) as client:  # runs the lifespan: it starts the verifier
        yield FastAPIService(client, auth.verifier, app)


def starlette_app(verifier: TokenVerifier) -> Any:
    """The Starlette app of the FastAPI guide's "Starlette without FastAPI": the ASGI middleware,
    the endpoint decorator, and the logout receiver."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from tokensrv.verify.asgi import TokenMiddleware, logout_endpoint, require

    @require(scopes=["orders:read"])
    async def list_orders(request: Request) -> Response:
        return JSONResponse({"orders": []})

    async def end_session(claims: dict[str, Any]) -> None:
        app.state.ended_sessions.append(claims.get("sid") or claims["sub"])

    app = Starlette(routes=[Route("/orders", list_orders),
                            Route("/backchannel-logout", logout_endpoint(end_session), methods=["POST"])],
                    middleware=[Middleware(TokenMiddleware, verifier=verifier, realm="orders")])
    app.state.ended_sessions = []
    return app


@contextmanager
def starlette_service(server: LiveServer) -> Iterator[Service]:
    from starlette.testclient import TestClient
    options = verifier_options(server)
    verifier = TokenVerifier(options.pop("issuer"), options.pop("audience"), **options)
    app = starlette_app(verifier)
    with TestClient(app) as client:  # runs the lifespan: the middleware starts the verifier
        yield FastAPIService(client, verifier, app)


class FlaskService:
    base_url = "http://localhost"

    def __init__(self, app: Any, verifier: Any) -> None:
        self.app, self.client, self.sync = app, app.test_client(), verifier

    @property
    def verifier(self) -> TokenVerifier:
        return self.sync.verifier  # type: ignore[no-any-return]

    @property
    def ended_sessions(self) -> list[str]:
        return list(self.app.config["ENDED_SESSIONS"])

    def get(self, path: str, headers: dict[str, str]) -> Answer:
        return self._answer(self.client.get(path, headers=headers))

    def post_form(self, path: str, form: dict[str, str]) -> Answer:
        return self._answer(self.client.post(path, data=form))

    @staticmethod
    def _answer(resp: Any) -> Answer:
        return Answer(resp.status_code, resp.headers.getlist("WWW-Authenticate"), resp.get_json(silent=True))


@contextmanager
def flask_service(server: LiveServer) -> Iterator[Service]:
    from examples.downstream.flask_app import create_app
    from tokensrv.verify.sync import SyncVerifier
    options = verifier_options(server)
    with SyncVerifier(options.pop("issuer"), options.pop("audience"), **options) as verifier:
        yield FlaskService(create_app(verifier), verifier)


class DjangoService:
    base_url = "http://localhost"

    def __init__(self) -> None:
        from django.test import Client
        self.client = Client(SERVER_NAME="localhost")  # a host the example allows

    @property
    def verifier(self) -> TokenVerifier:
        from tokensrv.verify.django import verifier
        return verifier().verifier

    @property
    def ended_sessions(self) -> list[str]:
        from examples.downstream import django_app
        return list(django_app.ended_sessions)

    def get(self, path: str, headers: dict[str, str]) -> Answer:
        return self._answer(self.client.get(path, headers=headers))

    def post_form(self, path: str, form: dict[str, str]) -> Answer:
        return self._answer(self.client.post(path, data=urllib.parse.urlencode(form),
                                             content_type="application/x-www-form-urlencoded"))

    @staticmethod
    def _answer(resp: Any) -> Answer:
        # Django keeps one value per header: the adapter joins the challenges with ", "
        challenge = resp.headers.get("WWW-Authenticate")
        body = json.loads(resp.content) if resp.get("Content-Type") == "application/json" else None
        return Answer(resp.status_code, [] if challenge is None else [challenge], body)


@contextmanager
def django_service(server: LiveServer) -> Iterator[Service]:
    import django
    from django.test import override_settings

    from examples.downstream import django_app
    django.setup()
    config = {**verifier_options(server), "realm": "orders"}
    django_app.ended_sessions.clear()
    with override_settings(TOKENSRV_VERIFY=config):  # the adapter makes a verifier for it, closed after
        yield DjangoService()


SERVICES = {"fastapi": fastapi_service, "starlette": starlette_service, "flask": flask_service,
            "django": django_service}

