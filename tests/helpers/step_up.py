"""Helpers for the step-up tests: a password-only SSO session, TOTP enrolled from /account with a
code computed from the shown secret, the second step's form, and ID tokens read by PyJWT."""
from __future__ import annotations

import re
from typing import Any

import jwt as pyjwt
import pyotp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.sso import App, begin, login_page, submit
from tokensrv.oauth.browser import second_factor

MFA = "urn:tokensrv:acr:mfa"
PWD = "urn:tokensrv:acr:pwd"


def secret_on(html: str) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert found, html
    return found.group(1).replace(" ", "")


async def password_session(client: TestClient, app: App, username: str = "alice") -> None:
    """Sign in with the password alone (TOTP not enrolled yet): an SSO session of amr pwd."""
    _, resp = await begin(client, app)
    request_id, csrf = await login_page(client, resp.headers["Location"])
    resp = await submit(client, request_id, csrf, username)
    assert resp.status == 303, await resp.text()


async def enrol_totp(client: TestClient, clock: FakeClock, username: str = "alice") -> str:
    """Enrol TOTP for the user without touching the browser's session, which stays password-only
    (enrolling on /account would raise it to two-step: a session as old as before the enrolment,
    on another device); the secret."""
    p = provider_of(client)
    user = await p.store.users.find_user(username)
    assert user is not None
    setup = await second_factor.setup_for(p, user)
    assert await second_factor.enrol(p, user, pyotp.TOTP(setup.secret).at(clock()), "127.0.0.1") is not None
    clock.advance(30)  # the enrolment's code is used: the next one is of a new step
    return setup.secret


async def code_step(client: TestClient, request_id: str, csrf: str, code: str) -> ClientResponse:
    return await client.post("/login/two-step", data={"request": request_id, "csrf_token": csrf, "code": code,
                                                      "recovery": ""}, allow_redirects=False)


async def id_token_claims(client: TestClient, token: str) -> dict[str, Any]:
    """Checked by PyJWT against the published JWKS, as an application would."""
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    key = pyjwt.PyJWKSet.from_dict(jwks)[pyjwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = pyjwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False},
                                          leeway=300)  # the server's clock is the test's, moved on
    return claims
