"""The example downstream service reads its request bodies with tokensrv.verify's bounded JSON
parser: a body of 1000 nested arrays is 400 invalid_request, not a RecursionError and a 500."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers.json_docs import ODD, nested
from tests.helpers.oauth import Registered, login
from tests.helpers.orders import bearer

pytestmark = pytest.mark.integration


async def test_a_hostile_order_is_a_bad_request(issuer: TestClient, app: Registered,
                                                orders: TestClient,
                                                caplog: pytest.LogCaptureFixture) -> None:
    token = (await login(issuer, app, scope="orders:write"))["access_token"]
    for body in (nested(1000), b'{"item": "tea", "quantity": 1, "x": ' + nested(1000) + b"}", *ODD.values()):
        resp = await orders.post("/orders", data=body, headers={**bearer(token), "Content-Type": "application/json"})
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_request", body[:40]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    resp = await orders.post("/orders", json={"item": "tea", "quantity": 2}, headers=bearer(token))
    assert resp.status == 201
