"""A step-up's "confirm it's you" (prompt=login) finished with a passkey takes only the signed-in
user's own: another user's passkey posted to /login/passkey is refused, as their password is."""
from __future__ import annotations

from urllib.parse import urlsplit

from tests.helpers.app import provider_of
from tests.helpers.passkeys import Authenticator, assert_400, b64, post_json
from tests.helpers.sso import add_app, add_user, begin, cookie, login_page, sign_in
from tokensrv.oauth.clients.metadata import secret_digest
from tokensrv.store.passkeys import Passkey


async def test_a_prompt_login_confirmation_takes_only_the_signed_in_users_passkey(client, settings):
    app = await add_app(client, "app")
    await add_user(client)  # alice, signed in below
    await add_user(client, "bob", email="bob@example.org")
    await sign_in(client, app)  # with the password (no passkey yet: no second step)
    p = provider_of(client)
    rp_id = urlsplit(settings.issuer).hostname
    devices = {}
    for name in ("alice", "bob"):
        user = await p.store.users.find_user(name)
        device, credential_id = Authenticator(rp_id), b64(f"credential of {name}".encode())
        devices[name] = (device, credential_id, user.sub)
        await p.store.passkeys.add_passkey(user.sub, Passkey(credential_id, b64(device.cose()), "Test", 1))

    async def confirm_with(name: str):
        _, resp = await begin(client, app, prompt="login")
        request_id, csrf = await login_page(client, resp.headers["Location"])
        ids = {"request": request_id, "csrf_token": csrf}
        options = await (await post_json(client, "/login/passkey/options", ids)).json()
        device, credential_id, sub = devices[name]
        credential = device.assertion(credential_id, options["challenge"], settings.issuer, True, 1, sub.encode())
        return await post_json(client, "/login/passkey", {**ids, "credential": credential})

    await assert_400(await confirm_with("bob"))  # someone else's passkey does not confirm alice
    resp = await confirm_with("alice")
    assert resp.status == 200 and "code=" in (await resp.json())["location"]
    session = await p.store.sessions.get_session(secret_digest(cookie(client, "tokensrv_session") or ""))
    assert session is not None and session.sub == devices["alice"][2]
