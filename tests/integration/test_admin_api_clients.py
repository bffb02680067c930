"""The admin API's index and client routes against the real server and store: happy paths, and
the 400 (naming the field), 404 and 409 answers; the admin listener only serves /admin/."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.helpers.admin_api import AdminAPI, start_admin_api
from tests.helpers.oauth import Registered, token


@pytest.fixture
async def api(make_client, settings):
    async with aiohttp.ClientSession() as http:
        yield await start_admin_api(make_client, settings, http)


async def test_the_index_says_where_to_get_a_token_without_authentication(api: AdminAPI):
    status, body, _ = await api.call("GET", "/admin/", token_value="")
    issuer = body["issuer"]
    assert status == 200
    assert body == {"issuer": issuer, "token_endpoint": issuer + "/oauth2/token", "scope": "tokensrv:admin"}


async def test_each_listener_serves_only_its_own_paths(api: AdminAPI):
    public = await api.public.get("/admin/clients", headers={"Authorization": f"Bearer {api.bearer}"})
    assert public.status == 404 and (await public.json())["error"] == "not_found"
    status, body, _ = await api.call("GET", "/.well-known/openid-configuration")
    assert status == 404 and body["error"] == "not_found"


async def test_a_client_is_added_shown_listed_changed_and_removed(api: AdminAPI, caplog):
    caplog.set_level(logging.INFO)
    status, added, _ = await api.call("POST", "/admin/clients", {
        "client_id": "web", "redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code"],
        "scope": "openid profile", "client_name": "Web"})
    assert status == 201 and added["client_id"] == "web" and added["client_secret"]
    status, shown, _ = await api.call("GET", "/admin/clients/web")
    assert status == 200 and shown["scopes"] == ["openid", "profile"] and shown["client_name"] == "Web"
    assert "secret_digest" not in shown and added["client_secret"] not in str(shown)
    status, listed, _ = await api.call("GET", "/admin/clients")
    assert [c["client_id"] for c in listed] == ["ops", "web"]
    status, changed, _ = await api.call("PATCH", "/admin/clients/web", {
        "redirect_uris": ["https://app.example/cb2"], "client_name": None})
    assert status == 200 and changed["redirect_uris"] == ["https://app.example/cb2"]
    assert changed["client_name"] is None and changed["scopes"] == ["openid", "profile"]
    status, body, _ = await api.call("DELETE", "/admin/clients/web")
    assert status == 204 and body is None
    assert (await api.call("GET", "/admin/clients/web"))[0] == 404
    audits = [r for r in caplog.records if getattr(r, "fields", {}).get("event", "").startswith("admin.client_")]
    assert [r.fields["event"] for r in audits] == ["admin.client_added", "admin.client_updated",
                                                   "admin.client_removed"]
    assert all(r.fields["caller"] == "ops" and r.fields["via"] == "api" for r in audits)
    assert added["client_secret"] not in caplog.text


async def test_a_switch_patched_to_null_goes_back_to_its_default(api: AdminAPI):
    # what `tokensrv client update ID --unset-consent --server URL` sends
    await api.call("POST", "/admin/clients", {"client_id": "tp", "redirect_uris": ["https://tp.example/cb"],
                                              "consent_required": True})
    assert (await api.call("GET", "/admin/clients/tp"))[1]["consent_required"] is True
    status, changed, _ = await api.call("PATCH", "/admin/clients/tp", {"consent_required": None})
    assert status == 200 and changed["consent_required"] is False and changed["asks_consent"] is False
    status, _, _ = await api.call("POST", "/admin/clients", {
        "client_id": "tq", "redirect_uris": ["https://tq.example/cb"], "require_mfa": None})
    assert status == 201 and (await api.call("GET", "/admin/clients/tq"))[1]["require_mfa"] is False


async def test_a_rotated_secret_works_and_the_old_one_for_the_overlap(api: AdminAPI):
    status, added, _ = await api.call("POST", "/admin/clients", {"client_id": "svc",
                                                                 "grant_types": ["client_credentials"]})
    status, rotated, _ = await api.call("POST", "/admin/clients/svc/secret", {"overlap": 3600})
    assert status == 200 and rotated["client_secret"] != added["client_secret"]
    assert rotated["previous_secret_expires_at"] is not None
    for secret in (added["client_secret"], rotated["client_secret"]):
        assert (await token(api.public, Registered("svc", secret), grant_type="client_credentials"))[0] == 200
    status, again, _ = await api.call("POST", "/admin/clients/svc/secret")  # no body: no overlap
    assert status == 200 and again["previous_secret_expires_at"] is None
    assert (await token(api.public, Registered("svc", rotated["client_secret"]),
                        grant_type="client_credentials"))[0] == 401


@pytest.mark.parametrize(("method", "path", "body", "status", "error", "names"), [
    ("POST", "/admin/clients", {"client_id": "x", "colour": "red"}, 400, "invalid_request", "colour"),
    ("POST", "/admin/clients", {"grant_types": ["client_credentials"]}, 400, "invalid_request", "client_id"),
    ("POST", "/admin/clients", {"client_id": "x", "redirect_uris": "https://a.example/cb"}, 400,
     "invalid_request", "redirect_uris"),
    ("POST", "/admin/clients", {"client_id": "x", "redirect_uris": ["http://evil.example/cb"]}, 400,
     "invalid_request", "redirect_uri"),
    ("POST", "/admin/clients", {"client_id": "x", "grant_types": ["authorization_code"], "admin": True,
                                "redirect_uris": ["https://a.example/cb"]}, 400, "invalid_request", "admin"),
    ("POST", "/admin/clients", {"client_id": "x", "scope": "tokensrv:admin"}, 400, "invalid_request", "admin"),
    ("POST", "/admin/clients", {"client_id": "ops"}, 409, "conflict", "ops"),
    ("GET", "/admin/clients/nope", None, 404, "not_found", "nope"),
    ("PATCH", "/admin/clients/nope", {"client_name": "N"}, 404, "not_found", "nope"),
    ("PATCH", "/admin/clients/ops", {"client_id": "other"}, 400, "invalid_request", "client_id"),
    ("PATCH", "/admin/clients/ops", {}, 400, "invalid_request", "nothing to change"),
    ("PATCH", "/admin/clients/ops", {"first_party": "yes"}, 400, "invalid_request", "first_party"),
    ("DELETE", "/admin/clients/nope", None, 404, "not_found", "nope"),
    ("POST", "/admin/clients/nope/secret", {}, 404, "not_found", "nope"),
    ("POST", "/admin/clients/ops/secret", {"overlap": "1h"}, 400, "invalid_request", "overlap"),
    ("POST", "/admin/clients/ops/secret", {"overlap": 10**9}, 400, "invalid_request", "overlap"),
])
async def test_bad_requests_get_a_precise_error(api: AdminAPI, method, path, body, status, error, names):
    got, answer, _ = await api.call(method, path, body)
    assert (got, answer["error"]) == (status, error), answer
    assert names in answer["error_description"]


async def test_bodies_must_be_bounded_json_objects(api: AdminAPI):
    for raw, content_type in ((b"[1]", "application/json"), (b"{", "application/json"),
                              (b"client_id=x", "application/x-www-form-urlencoded"),
                              (b"[" * 40 + b"]" * 40, "application/json")):
        status, answer, _ = await api.call("POST", "/admin/clients", data=raw,
                                           headers={"Content-Type": content_type})
        assert (status, answer["error"]) == (400, "invalid_request"), raw[:20]
    status, answer, _ = await api.call("POST", "/admin/clients", data=b'{"client_id": "' + b"x" * 70_000 + b'"}',
                                       headers={"Content-Type": "application/json"})
    assert status == 413 and answer["error"] == "invalid_request"


async def test_a_wrong_method_is_405_with_allow(api: AdminAPI):
    status, answer, response = await api.call("PUT", "/admin/clients")
    assert status == 405 and answer["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


async def test_concurrent_patches_of_different_fields_lose_nothing(api: AdminAPI):
    await api.call("POST", "/admin/clients", {"client_id": "web", "redirect_uris": ["https://a.example/cb"],
                                              "grant_types": ["authorization_code"]})
    changes = [{"client_name": "Web"}, {"logo_uri": "https://a.example/logo.png"},
               {"policy_uri": "https://a.example/policy"}, {"tos_uri": "https://a.example/tos"},
               {"scope": ["openid", "email"]}, {"allowed_origins": ["https://a.example"]}]
    answers = await asyncio.gather(*(api.call("PATCH", "/admin/clients/web", change) for change in changes))
    assert [status for status, _, _ in answers] == [200] * len(changes)
    shown = (await api.call("GET", "/admin/clients/web"))[1]
    assert (shown["client_name"], shown["logo_uri"], shown["policy_uri"], shown["tos_uri"], shown["scopes"],
            shown["allowed_origins"]) == ("Web", "https://a.example/logo.png", "https://a.example/policy",
                                          "https://a.example/tos", ["openid", "email"], ["https://a.example"])
