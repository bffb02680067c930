"""What an operator does while the account page works on the same user stands: a password change
(its argon2 hash is slow) never writes back the user record it read before (`user disable`)."""
from __future__ import annotations

from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD
from tests.helpers.sso import add_app, add_user, csrf_of, sign_in
from tokensrv.admin import operations as admin
from tokensrv.oauth.endpoints.revocation import revoke_user

NEW_PASSWORD = "a new password, long enough"


async def test_a_disable_during_the_password_change_stands_and_signs_the_browser_out(client, monkeypatch):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    p = provider_of(client)
    hash_password = p.passwords.hash

    async def hash_while_the_operator_disables(password: str) -> str:
        await admin.set_disabled(p, "alice", True)  # `tokensrv user disable alice`, while argon2 runs
        return await hash_password(password)

    monkeypatch.setattr(p.passwords, "hash", hash_while_the_operator_disables)
    csrf = csrf_of(await (await client.get("/account")).text())
    resp = await client.post("/account", data={"csrf_token": csrf, "action": "password-change",
                                               "current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                               "new_password_again": NEW_PASSWORD}, allow_redirects=False)
    assert resp.status == 200 and "account was disabled meanwhile" in await resp.text()
    alice = await p.store.users.find_user("alice")
    assert alice is not None and alice.disabled
    resp = await client.get("/account", allow_redirects=False)
    assert resp.status != 200 or "account-username" not in await resp.text()  # no new session


async def test_signing_out_everywhere_keeps_a_change_made_since_the_user_was_read(client):
    await add_user(client)
    p = provider_of(client)
    stale = await admin.find_user(p, "alice")
    await admin.set_disabled(p, "alice", True)
    await revoke_user(p, stale, password_hash=await p.passwords.hash(NEW_PASSWORD))
    alice = await admin.find_user(p, "alice")
    assert alice.disabled and alice.not_before_ms > stale.not_before_ms
    assert alice.password_hash != stale.password_hash
