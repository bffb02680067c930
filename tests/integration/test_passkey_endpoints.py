"""The passkey endpoints over HTTP with hostile bodies (the test client as the browser): whatever
arrives, malformed JSON, deep nesting, wrong types, garbage attestations and assertions answering
a real challenge, the answer is a precise 400 (RFC 6749 JSON), never a 500; and a post another
site sends is refused before anything is read."""
from __future__ import annotations

import base64
import json

import pytest

from tests.helpers.sso import add_app, add_user, begin, csrf_of, login_page, submit


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def client_data(kind: str, challenge: str, origin: str) -> str:
    return b64(json.dumps({"type": kind, "challenge": challenge, "origin": origin}).encode())


async def post_json(client, path: str, body: object, raw: bytes | None = None, **headers: str):
    data = raw if raw is not None else json.dumps(body).encode()
    return await client.post(path, data=data, headers={"Content-Type": "application/json", **headers})


async def assert_400(resp) -> str:
    assert resp.status == 400, (resp.status, await resp.text())
    body = await resp.json()
    assert body["error"] == "invalid_request" and body["error_description"], body
    return body["error_description"]


def hostile_credentials(challenge: str, origin: str, kind: str) -> list[object]:
    good = client_data(kind, challenge, origin)
    return [None, 7, "not json", [], {}, {"id": "x"}, {"id": "x", "rawId": "x", "response": []},
            {"id": "!!", "rawId": "!!", "type": "public-key", "response": {"clientDataJSON": "!!"}},
            {"id": "AA", "rawId": "AA", "type": "public-key",
             "response": {"clientDataJSON": b64(b"{not json"), "attestationObject": "AA", "authenticatorData": "AA",
                          "signature": "AA"}},
            {"id": "AA", "rawId": "AA", "type": "public-key",  # a real challenge, garbage around it
             "response": {"clientDataJSON": good, "attestationObject": b64(b"\xff\x00garbage"),
                          "authenticatorData": b64(b"short"), "signature": b64(b"sig"), "userHandle": b64(b"x")}}]


async def test_hostile_sign_in_bodies_are_400s(client, settings):
    app = await add_app(client, "app")
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    ids = {"request": request_id, "csrf_token": csrf}
    for raw in (b"", b"{", b"[]", b"[" * 100 + b"]" * 100, b'{"a": NaN}', b'{"a": 1, "a": 2}', b"\xff\xfe"):
        await assert_400(await post_json(client, "/login/passkey", None, raw=raw))
    resp = await client.post("/login/passkey", data=ids)  # a form, not JSON
    await assert_400(resp)
    await assert_400(await post_json(client, "/login/passkey", {**ids, "csrf_token": "other"}))
    for credential in hostile_credentials("AAAA", settings.issuer, "webauthn.get"):
        options = await (await post_json(client, "/login/passkey/options", ids)).json()
        assert options["userVerification"] == "required" and options["allowCredentials"] == []
        # each body answers the challenge just given (or a wrong one): past the cheap checks
        text = json.dumps(credential).replace("AAAA", options["challenge"])
        resp = await post_json(client, "/login/passkey", {**ids, "credential": json.loads(text)})
        description = await assert_400(resp)
        assert description.startswith("That passkey could not be used"), description
    resp = await post_json(client, "/login/passkey", ids, Origin="https://evil.example")
    assert resp.status == 403


async def test_hostile_registration_bodies_are_400s(client, settings):
    app = await add_app(client, "app")
    await add_user(client)
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    assert (await submit(client, request_id, csrf)).status == 303
    csrf = csrf_of(await (await client.get("/account")).text())
    await assert_400(await post_json(client, "/account/passkeys/options", {"csrf_token": csrf, "purpose": "x"}))
    for credential in hostile_credentials("AAAA", settings.issuer, "webauthn.create"):
        options = await (await post_json(client, "/account/passkeys/options",
                                         {"csrf_token": csrf, "purpose": "register"})).json()
        assert options["authenticatorSelection"]["residentKey"] == "required"
        text = json.dumps(credential).replace("AAAA", options["challenge"])
        await assert_400(await post_json(client, "/account/passkeys",
                                         {"csrf_token": csrf, "name": "x", "credential": json.loads(text)}))
    # a removal confirmed by a garbage assertion is not confirmed: the page says what to do
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "passkey-remove", "credential": "c1",
                                               "assertion": '{"id": 1}'})
    assert resp.status == 200 and "Confirm it is you with a passkey" in await resp.text()


@pytest.mark.parametrize("path", ["/account/passkeys/options", "/account/passkeys"])
async def test_account_passkey_endpoints_need_a_session(client, path):
    resp = await client.get("/account", allow_redirects=False)  # no session: to the login page, a CSRF cookie
    _, csrf = await login_page(client, resp.headers["Location"])
    resp = await post_json(client, path, {"csrf_token": csrf, "purpose": "register"})
    assert resp.status == 400 and (await resp.json())["error"] == "login_required"
