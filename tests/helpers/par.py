"""Pushed authorization requests (RFC 9126): push, authorize with the request_uri, sign in."""
from __future__ import annotations

from tests.helpers.sso import App, login_page, pkce, query_of, submit
from tests.helpers.sso import Flow as SSOFlow

PAR = "/oauth2/par"


async def push(client, app: App, headers=None, **params):
    """POST the request to the PAR endpoint: (status, body, flow)."""
    verifier, challenge = pkce()
    flow = SSOFlow(app, verifier, "pushed-state", "pushed-nonce")
    data = {"response_type": "code", "redirect_uri": app.redirect_uri, "scope": "openid profile",
            "state": flow.state, "nonce": flow.nonce, "code_challenge": challenge,
            "code_challenge_method": "S256", **app.form(), **params}
    data = {k: v for k, v in data.items() if v is not None}
    resp = await client.post(PAR, data=data, headers=app.auth() if headers is None else headers)
    return resp.status, await resp.json(), flow, resp.headers


async def authorize_pushed(client, client_id, request_uri, **extra):
    return await client.get("/oauth2/authorize", params={"client_id": client_id, "request_uri": request_uri,
                                                         **extra}, allow_redirects=False)


async def log_in_at(client, resp) -> dict[str, str]:
    assert resp.status == 303, await resp.text()
    request_id, csrf = await login_page(client, resp.headers["Location"])
    done = await submit(client, request_id, csrf)
    assert done.status == 303, await done.text()
    return query_of(done.headers["Location"])
