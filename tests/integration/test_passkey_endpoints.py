"""The passkey endpoints over HTTP with hostile bodies (the test client as the browser): whatever
arrives, malformed JSON, deep nesting, wrong types, garbage attestations and assertions answering
a real challenge, the answer is a precise 400 (RFC 6749 JSON), never a 500; and a post another
site sends is refused before anything is read."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD
from tests.helpers.passkeys import Authenticator, assert_400, b64, client_data, post_json
from tests.helpers.sso import add_app, add_user, begin, csrf_of, login_page, submit
from tokensrv.oauth.browser.passkeys import MAX_PASSKEYS
from tokensrv.store.passkeys import Passkey


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


async def test_adding_a_passkey_needs_a_recent_sign_in(client, clock):
    """A passkey signs in alone and outlives a password change: a session left open (signed in
    longer ago than TOKENSRV_RECENT_AUTH) cannot plant one until the password is typed again."""
    app = await add_app(client, "app")
    await add_user(client)
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    assert (await submit(client, request_id, csrf)).status == 303
    clock.advance(provider_of(client).settings.recent_auth)
    page = await (await client.get("/account")).text()
    assert 'id="passkey-unlock"' in page and 'data-passkey="register"' not in page
    csrf = csrf_of(page)
    for path in ("/account/passkeys/options", "/account/passkeys"):
        assert "confirm it is you" in await assert_400(await post_json(client, path, {
            "csrf_token": csrf, "purpose": "register", "credential": {}}))
    asked = await (await client.post("/account", data={"csrf_token": csrf, "action": "passkeys-unlock"})).text()
    assert 'id="reauth-password"' in asked
    unlocked = await (await client.post("/account", data={
        "csrf_token": csrf, "action": "passkeys-unlock", "reauth_password": PASSWORD})).text()
    assert 'data-passkey="register"' in unlocked and 'id="passkey-unlock"' not in unlocked
    options = await post_json(client, "/account/passkeys/options", {"csrf_token": csrf, "purpose": "register"})
    assert options.status == 200


async def test_a_user_has_at_most_max_passkeys(client, settings):
    app = await add_app(client, "app")
    user = await add_user(client)
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    assert (await submit(client, request_id, csrf)).status == 303
    store = provider_of(client).store.passkeys
    for i in range(MAX_PASSKEYS):
        assert await store.add_passkey(user["sub"], Passkey(f"id{i}", "key", f"key {i}", 1, (), False, 0))
    csrf = csrf_of(await (await client.get("/account")).text())
    options = await (await post_json(client, "/account/passkeys/options",
                                     {"csrf_token": csrf, "purpose": "register"})).json()
    credential = hostile_credentials(options["challenge"], settings.issuer, "webauthn.create")[-1]
    assert "remove one" in await assert_400(await post_json(client, "/account/passkeys", {
        "csrf_token": csrf, "credential": credential}))


@pytest.mark.parametrize("path", ["/account/passkeys/options", "/account/passkeys"])
async def test_account_passkey_endpoints_need_a_session(client, path):
    resp = await client.get("/account", allow_redirects=False)  # no session: to the login page, a CSRF cookie
    _, csrf = await login_page(client, resp.headers["Location"])
    resp = await post_json(client, path, {"csrf_token": csrf, "purpose": "register"})
    assert resp.status == 400 and (await resp.json())["error"] == "login_required"




async def test_a_passkey_alone_needs_user_verification_and_a_rising_counter(client, settings):
    app = await add_app(client, "app")
    await add_user(client)
    p = provider_of(client)
    user = await p.store.users.find_user("alice")
    rp_id = urlsplit(settings.issuer).hostname
    device = Authenticator(rp_id)
    await p.store.passkeys.add_passkey(user.sub, Passkey("Y3JlZA", b64(device.cose()), "Test", 1))

    async def attempt(user_verified: bool, count: int):
        _, resp = await begin(client, app)
        request_id, csrf = await login_page(client, resp.headers["Location"])
        ids = {"request": request_id, "csrf_token": csrf}
        options = await (await post_json(client, "/login/passkey/options", ids)).json()
        credential = device.assertion("Y3JlZA", options["challenge"], settings.issuer, user_verified, count,
                                      user.sub.encode())
        return await post_json(client, "/login/passkey", {**ids, "credential": credential})

    await assert_400(await attempt(user_verified=False, count=1))  # presence alone is not enough to sign in
    resp = await attempt(user_verified=True, count=1)
    assert resp.status == 200 and "code=" in (await resp.json())["location"]
    client.session.cookie_jar.clear_domain(urlsplit(settings.issuer).hostname)  # a fresh browser
    await assert_400(await attempt(user_verified=True, count=1))  # the counter did not go up: a clone


async def test_a_passkey_counts_as_enrolled_where_mfa_is_required_and_is_off_with_mfa(make_client, settings):
    client = await make_client(settings, mfa="required")
    app = await add_app(client, "app")
    await add_user(client)
    p = provider_of(client)
    user = await p.store.users.find_user("alice")
    await p.store.passkeys.add_passkey(user.sub, Passkey("Y3JlZA", "cHVibGlj", "Test", 1))
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login/two-step?")
    html = await (await client.get(resp.headers["Location"])).text()
    assert 'data-passkey="signin"' in html and "Use a passkey" in html
    assert 'id="totp-secret"' not in html and 'name="code"' not in html  # no TOTP enrolment forced on it

    off = await make_client(settings, mfa="off")
    app = await add_app(off, "other")
    _, resp = await begin(off, app)
    request_id, csrf = await login_page(off, resp.headers["Location"])
    assert "Use a passkey" not in await (await off.get(resp.headers["Location"])).text()
    resp = await post_json(off, "/login/passkey/options", {"request": request_id, "csrf_token": csrf})
    assert await assert_400(resp) == "passkeys are not offered"
