"""A signed-in user's tokens, and whether a refresh token still works."""
from __future__ import annotations

from tests.helpers.sso import redeem, sign_in


async def logged_in(client, app, username="alice", **params):
    flow, answer = await sign_in(client, app, username, **params)
    status, tokens = await redeem(client, flow, answer["code"])
    assert status == 200, tokens
    return tokens


async def refresh_status(client, app, token):
    resp = await client.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                    "client_id": app.client_id})
    return resp.status
