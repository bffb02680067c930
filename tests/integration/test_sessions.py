"""SSO sessions: idle and absolute lifetimes, and sessions of disabled, signed-out or removed users."""
from __future__ import annotations

import pytest

from tests.helpers.app import provider_of
from tests.helpers.sso import add_app, add_user, begin, sign_in
from tokensrv.admin import operations as admin

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


def goes_to_login(resp) -> bool:
    return resp.headers["Location"].startswith("/login?")


async def test_idle_session_ends(client, clock):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    idle = provider_of(client).settings.session_idle_ttl
    clock.advance(idle - 1)
    _, resp = await begin(client, app)
    assert not goes_to_login(resp)  # used just in time: the idle clock restarts
    clock.advance(idle - 1)
    _, resp = await begin(client, app)
    assert not goes_to_login(resp)
    clock.advance(idle)
    _, resp = await begin(client, app)
    assert goes_to_login(resp)


async def test_session_ends_at_its_absolute_lifetime_however_active(client, clock):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    settings = provider_of(client).settings
    step = settings.session_idle_ttl // 2
    lived = 0
    while lived + step < settings.session_ttl:
        clock.advance(step)
        lived += step
        _, resp = await begin(client, app)
        assert not goes_to_login(resp)
    clock.advance(settings.session_ttl - lived)
    _, resp = await begin(client, app)
    assert goes_to_login(resp)


@pytest.mark.parametrize("action", ["disable", "revoke", "passwd", "remove"])
async def test_session_of_a_disabled_signed_out_or_removed_user_is_dead(client, clock, action):
    app = await add_app(client)
    await add_user(client)
    await sign_in(client, app)
    clock.advance(1)
    p = provider_of(client)
    if action == "disable":
        await admin.set_disabled(p, "alice", True)
    elif action == "revoke":
        await admin.revoke_everywhere(p, "alice")
    elif action == "passwd":
        await admin.set_password(p, "alice", "a brand new password")
    else:
        await admin.remove_user(p, "alice")
    _, resp = await begin(client, app)
    assert goes_to_login(resp)
    _, resp = await begin(client, app, prompt="none")
    assert "error=login_required" in resp.headers["Location"]
