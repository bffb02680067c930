"""openapi.yaml in step with the server: every route the app serves is described and every
operation described is served (registration on, so its routes exist), and the registration
metadata schema requires what the server requires. Schemathesis then checks the answers
(tests/security/test_openapi.py)."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
import yaml
from aiohttp import hdrs, web

from tests.helpers.admin_api import start_admin_api
from tests.helpers.app import provider_of
from tests.helpers.sso import add_user
from tokensrv.admin import operations as admin
from tokensrv.server.app import ADMIN_APP, create_app

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# HEAD comes with every GET route (aiohttp's add_get) and is answered as GET without a body:
# the document describes the GET
IMPLIED = {hdrs.METH_HEAD}
ADMIN = "/admin/"  # the admin API's paths: served on its own listener (tokensrv/server/admin/)


def document() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def described() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document()["paths"].items()
            for method in item if method in HTTP_METHODS}


def path_of(resource: web.AbstractResource) -> str:
    """The resource's path in OpenAPI's template syntax (aiohttp's is the same for {name})."""
    assert isinstance(resource, (web.PlainResource, web.DynamicResource)), f"teach this test about {resource!r}"
    return resource.canonical


def served(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for resource in app.router.resources():
        for route in resource:
            assert route.method != hdrs.METH_ANY, resource  # a catch-all could not be described
            if route.method not in IMPLIED:
                routes.add((route.method, path_of(resource)))
    return routes


def test_the_route_table_and_the_document_name_the_same_operations(settings):
    app = create_app(dataclasses.replace(settings, registration="on"), run_schedule=False)
    routes = served(app)
    public = {(method, path) for method, path in described() if not path.startswith(ADMIN)}
    assert len(routes) >= 25  # the whole surface, not an empty router
    assert routes - public == set(), "served but not in openapi.yaml"
    assert public - routes == set(), "in openapi.yaml but not served"


def test_the_admin_route_table_and_the_document_name_the_same_operations(settings):
    """The admin API's listener serves /admin/ and nothing else; the public one none of it."""
    app = create_app(settings, run_schedule=False)
    routes = served(app[ADMIN_APP])
    admin_described = {(method, path) for method, path in described() if path.startswith(ADMIN)}
    assert len(routes) >= 23 and all(path.startswith(ADMIN) for _, path in routes)  # every route of the contract
    assert routes - admin_described == set(), "served but not in openapi.yaml"
    assert admin_described - routes == set(), "in openapi.yaml but not served"
    assert all(op["security"] == [{"adminToken": []}] for path, item in document()["paths"].items()
               if path.startswith(ADMIN) and path != ADMIN for method, op in item.items() if method in HTTP_METHODS)


def test_every_operation_has_an_id_and_answers_described():
    ids = [op["operationId"] for item in document()["paths"].values()
           for method, op in item.items() if method in HTTP_METHODS]
    assert len(ids) == len(set(ids)) == len(described())
    for item in document()["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert op.get("responses"), (method, op["operationId"])


async def test_a_path_the_document_does_not_name_is_the_json_404(client):
    """Under /static/ too: a static folder answered a missing file with an empty octet-stream 404."""
    for path in ("/static/nothing-here.css", "/static/../setup.cfg", "/no/such/path"):
        resp = await client.get(path)
        assert (resp.status, resp.content_type) == (404, "application/json"), path
        assert (await resp.json())["error"] == "not_found"
    css = await client.get("/static/style.css")
    assert css.status == 200 and css.content_type == "text/css" and css.headers["ETag"]
    again = await client.get("/static/style.css", headers={"If-None-Match": css.headers["ETag"]})
    assert again.status == 304


# ---- the registration metadata's required members: the schema's rule is the server's ----

REDIRECTS: list[list[str] | None] = [None, [], ["https://rp.example.org/cb"]]
GRANTS: list[list[str] | None] = [None, [], ["authorization_code"], ["authorization_code", "refresh_token"],
                                  ["client_credentials"], ["refresh_token"], ["client_credentials", "refresh_token"]]
METHODS: list[str | None] = [None, "none", "client_secret_post", "private_key_jwt"]


def metadata(redirect_uris: list[str] | None, grant_types: list[str] | None, method: str | None) -> dict[str, Any]:
    """Metadata faulty in nothing but, perhaps, the redirect URIs for its grants: response_types
    goes with grant_types (RFC 7591 §2.1), a private_key_jwt client has keys."""
    body: dict[str, Any] = {"redirect_uris": redirect_uris, "grant_types": grant_types,
                            "token_endpoint_auth_method": method}
    if grant_types is not None:
        body["response_types"] = ["code"] if "authorization_code" in grant_types else []
    if method == "private_key_jwt":
        body["jwks_uri"] = "https://rp.example.org/jwks.json"
    return {name: value for name, value in body.items() if value is not None}


@pytest.fixture
async def server(make_client, settings):
    return await make_client(settings, registration="on")


async def test_client_metadata_requires_redirect_uris_exactly_when_the_server_does(server):
    schema = document()["components"]["schemas"]["ClientMetadata"]
    validator = jsonschema_rs.validator_for(schema)
    token = (await admin.mint_initial_token(provider_of(server), 3600, 1000))["initial_access_token"]
    for redirect_uris, grant_types, method in itertools.product(REDIRECTS, GRANTS, METHODS):
        body = metadata(redirect_uris, grant_types, method)
        resp = await server.post("/oauth2/register", json=body, headers={"Authorization": f"Bearer {token}"})
        answer = await resp.json()
        refused_for_redirects = resp.status == 400 and "redirect" in answer.get("error_description", "")
        assert resp.status in (201, 400), (body, answer)
        # the server registers it: the schema accepts it; the server wants redirect URIs: the schema too
        assert validator.is_valid(body) == (resp.status == 201 or not refused_for_redirects), (body, answer)
        if resp.status == 201:
            assert validator.is_valid(answer), answer  # and the answer says what was registered


# ---- the admin API's answers are what the document says ----

def admin_validator(path: str, method: str, status: str) -> Any:
    spec = document()
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return jsonschema_rs.validator_for({**schema, "components": spec["components"]})


async def test_the_admin_apis_answers_match_the_document(make_client, settings):
    async with aiohttp.ClientSession() as http:
        api = await start_admin_api(make_client, settings, http)
        await add_user(api.public, "alice")
        calls = [("POST", "/admin/clients", {"client_id": "svc"}, "/admin/clients", "201"),
                 ("GET", "/admin/clients", None, "/admin/clients", "200"),
                 ("GET", "/admin/clients/svc", None, "/admin/clients/{id}", "200"),
                 ("PATCH", "/admin/clients/svc", {"client_name": "Svc"}, "/admin/clients/{id}", "200"),
                 ("POST", "/admin/clients/svc/secret", {"overlap": 60}, "/admin/clients/{id}/secret", "200"),
                 ("POST", "/admin/users", {"username": "bob"}, "/admin/users", "201"),
                 ("GET", "/admin/users", None, "/admin/users", "200"),
                 ("PATCH", "/admin/users/bob", {"roles": ["x"]}, "/admin/users/{username}", "200"),
                 ("GET", "/admin/users/alice/sessions", None, "/admin/users/{username}/sessions", "200"),
                 ("GET", "/admin/users/alice/consents", None, "/admin/users/{username}/consents", "200"),
                 ("POST", "/admin/users/alice/revoke", None, "/admin/users/{username}/revoke", "200"),
                 ("GET", "/admin/keys", None, "/admin/keys", "200"),
                 ("POST", "/admin/tokens/revoke", {"token": "x"}, "/admin/tokens/revoke", "200"),
                 ("GET", "/admin/", None, "/admin/", "200")]
        for method, path, body, template, status in calls:
            got, answer, _ = await api.call(method, path, body)
            assert str(got) == status, (path, answer)
            errors = [e.message for e in admin_validator(template, method.lower(), status).iter_errors(answer)]
            assert errors == [], (method, path, errors)
