"""Per-client and per-address token buckets on the token endpoint (RFC 6585 §4: 429 + Retry-After)."""
from __future__ import annotations

import pytest

from tests.helpers.oauth import add_client, basic, post

CC = {"grant_type": "client_credentials"}


async def test_limits_are_off_by_default(client):
    svc = await add_client(client, "svc")
    for _ in range(40):
        status, _, _ = await post(client, "/oauth2/token", CC, svc.basic)
        assert status == 200


async def test_a_client_past_its_rate_gets_429_until_its_bucket_refills(make_client, settings, clock):
    http = await make_client(settings, token_rate_per_client=1.0, token_rate_burst=2)
    svc, other = await add_client(http, "svc"), await add_client(http, "other")
    assert [(await post(http, "/oauth2/token", CC, svc.basic))[0] for _ in range(2)] == [200, 200]
    status, body, headers = await post(http, "/oauth2/token", CC, svc.basic)
    assert status == 429 and body["error"] == "slow_down" and headers["Retry-After"] == "1"
    assert (await post(http, "/oauth2/token", CC, other.basic))[0] == 200  # its own bucket
    clock.advance(1)
    assert (await post(http, "/oauth2/token", CC, svc.basic))[0] == 200
    assert (await post(http, "/oauth2/token", CC, svc.basic))[0] == 429


async def test_the_address_bucket_counts_requests_before_authentication(make_client, settings, clock):
    http = await make_client(settings, token_rate_per_address=0.5, token_rate_burst=3)
    svc = await add_client(http, "svc")
    wrong = basic("svc", "not-the-secret")
    assert [(await post(http, "/oauth2/token", CC, wrong))[0] for _ in range(3)] == [401, 401, 401]
    status, body, headers = await post(http, "/oauth2/token", CC, svc.basic)
    assert status == 429 and body["error"] == "slow_down" and headers["Retry-After"] == "2"
    clock.advance(2)
    assert (await post(http, "/oauth2/token", CC, svc.basic))[0] == 200


@pytest.mark.parametrize("value", ["-1", "fast", "inf"])
def test_bad_rates_are_configuration_errors(value):
    from tokensrv.config import ConfigError, load_settings
    with pytest.raises(ConfigError, match="TOKENSRV_TOKEN_RATE_PER_CLIENT"):
        load_settings({"TOKENSRV_TOKEN_RATE_PER_CLIENT": value}, redis_url="redis://x")
