"""A step-up parked on a session (the second step only, no password typed for it) ends with that
session: after logout nobody at the browser may finish it (enrolling their own TOTP as the user),
nor after the user is disabled or signed out everywhere (a new password) while it waited."""
from __future__ import annotations

from urllib.parse import urlsplit

import pyotp
import pytest

from tests.helpers.app import provider_of
from tests.helpers.sso import add_app, add_user, begin, csrf_of, is_error_page, query_of
from tests.helpers.step_up import MFA, code_step, password_session, secret_on
from tokensrv.admin import operations as admin


async def _parked_enrolment(client) -> tuple[str, str, str]:
    """A password session, then acr_values=mfa: the enrolment page (request id, csrf, TOTP secret)."""
    app = await add_app(client)
    await add_user(client)
    await password_session(client, app)
    _, resp = await begin(client, app, acr_values=MFA)
    location = resp.headers["Location"]
    assert urlsplit(location).path == "/login/two-step", location
    html = await (await client.get(location)).text()
    return query_of(location)["request"], csrf_of(html), secret_on(html)


async def _no_factor(client) -> bool:
    p = provider_of(client)
    alice = await p.store.users.find_user("alice")
    return alice is not None and await p.store.mfa.get_second_factor(alice.sub) is None


async def test_a_step_up_cannot_be_finished_after_logout(client, clock):
    request_id, csrf, secret = await _parked_enrolment(client)
    html = await (await client.get("/oauth2/logout")).text()
    resp = await client.post("/oauth2/logout", data={"csrf_token": csrf_of(html)})
    assert resp.status == 200 and "Signed out" in await resp.text()
    page = await client.get("/login/two-step", params={"request": request_id})
    assert page.status == 400 and 'id="totp-secret"' not in await page.text()
    resp = await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    assert resp.status == 400 and is_error_page(await resp.text())
    assert await _no_factor(client)  # nothing enrolled on alice's account
    assert "account-username" not in await (await client.get("/account")).text()


@pytest.mark.parametrize("operator", ["disable", "passwd"])
async def test_a_step_up_cannot_be_finished_once_its_user_was_signed_out(client, clock, operator):
    request_id, csrf, secret = await _parked_enrolment(client)
    p = provider_of(client)
    if operator == "disable":
        await admin.set_disabled(p, "alice", True)
    else:
        await admin.set_password(p, "alice", "a-new-password-for-alice")
    resp = await code_step(client, request_id, csrf, pyotp.TOTP(secret).at(clock()))
    assert resp.status == 400 and is_error_page(await resp.text())
    assert "account-username" not in await (await client.get("/account")).text()
