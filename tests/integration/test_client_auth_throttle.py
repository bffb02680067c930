"""Repeated failed client authentications per client_id and address end in 429 slow_down with
Retry-After, on every endpoint that authenticates clients; successes cost no store round trip."""
from __future__ import annotations

import ipaddress

import pytest

from tests.helpers.app import provider_of
from tests.helpers.oauth import add_client, basic, post
from tests.helpers.poll import eventually

CC = {"grant_type": "client_credentials"}
ATTACKER, OTHER = "203.0.113.66", "198.51.100.7"
LOCAL_PROXY = (ipaddress.ip_network("127.0.0.1/32"),)  # the test client's peer: X-Forwarded-For counts


def via(address: str, auth: dict[str, str]) -> dict[str, str]:
    return {**auth, "X-Forwarded-For": address}


async def proxied(make_client, settings, **changes):
    return await make_client(settings, trusted_proxies=LOCAL_PROXY, **changes)


async def test_wrong_secrets_end_in_429_within_100_attempts_with_default_settings(make_client, settings):
    http = await proxied(make_client, settings)
    svc = await add_client(http, "svc")
    wrong = via(ATTACKER, basic("svc", "guess"))
    statuses = []
    for _ in range(100):
        status, body, headers = await post(http, "/oauth2/token", CC, wrong)
        statuses.append(status)
        if status == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}, statuses
    assert body["error"] == "slow_down" and int(headers["Retry-After"]) > 0
    # the right secret from the throttled address is refused too: the secret is not even compared
    status, body, headers = await post(http, "/oauth2/token", CC, via(ATTACKER, svc.basic))
    assert status == 429 and body["error"] == "slow_down" and int(headers["Retry-After"]) > 0
    # the same client from another address is not locked out by the attacker
    status, body, _ = await post(http, "/oauth2/token", CC, via(OTHER, svc.basic))
    assert status == 200 and body["access_token"]


async def test_the_pair_recovers_after_the_window(make_client, settings, clock):
    http = await proxied(make_client, settings, client_auth_max_failures=3, client_auth_failure_window=60)
    svc = await add_client(http, "svc")
    for _ in range(3):
        assert (await post(http, "/oauth2/token", CC, via(ATTACKER, basic("svc", "guess"))))[0] == 401
    status, _, headers = await post(http, "/oauth2/token", CC, via(ATTACKER, svc.basic))
    assert status == 429 and 0 < int(headers["Retry-After"]) <= 60
    clock.advance(int(headers["Retry-After"]))
    assert (await post(http, "/oauth2/token", CC, via(ATTACKER, svc.basic)))[0] == 200
    # a new window: failures are counted from zero again
    assert (await post(http, "/oauth2/token", CC, via(ATTACKER, basic("svc", "guess"))))[0] == 401


async def test_a_lockout_reached_elsewhere_is_learnt_at_the_next_failure(make_client, settings, redis):
    """Another instance counted the failures in Valkey: this process refuses at its first failure."""
    http = await proxied(make_client, settings, client_auth_max_failures=3)
    svc = await add_client(http, "svc")
    other_instance = await proxied(make_client, settings, client_auth_max_failures=3)
    for _ in range(3):
        assert (await post(other_instance, "/oauth2/token", CC, via(ATTACKER, basic("svc", "guess"))))[0] == 401
    status, body, headers = await post(http, "/oauth2/token", CC, via(ATTACKER, basic("svc", "guess")))
    assert status == 429 and body["error"] == "slow_down" and int(headers["Retry-After"]) > 0
    assert (await post(http, "/oauth2/token", CC, via(ATTACKER, svc.basic)))[0] == 429


@pytest.mark.parametrize("path", ["/oauth2/revoke", "/oauth2/introspect"])
async def test_revoke_and_introspect_failures_are_counted_too(make_client, settings, path):
    http = await proxied(make_client, settings, client_auth_max_failures=3)
    svc = await add_client(http, "svc")
    for _ in range(3):
        assert (await post(http, path, {"token": "x"}, via(ATTACKER, basic("svc", "guess"))))[0] == 401
    for where in (path, "/oauth2/token"):  # one count per client and address, whatever the endpoint
        status, body, headers = await post(http, where, {"token": "x", **CC}, via(ATTACKER, svc.basic))
        assert status == 429 and body["error"] == "slow_down" and int(headers["Retry-After"]) > 0
    assert (await post(http, path, {"token": "x"}, via(OTHER, svc.basic)))[0] == 200


async def test_client_secret_post_and_unknown_clients_are_counted(make_client, settings):
    http = await proxied(make_client, settings, client_auth_max_failures=2)
    await add_client(http, "svc")
    for client_id in ("svc", "ghost"):  # an unknown id answers like a known one: no existence oracle
        form = {**CC, "client_id": client_id, "client_secret": "guess"}
        statuses = [(await post(http, "/oauth2/token", form, {"X-Forwarded-For": ATTACKER}))[0] for _ in range(3)]
        assert statuses == [401, 401, 429]


async def command_counts(redis) -> dict[str, int]:
    """Commands Valkey has executed so far, by name, leaving out our own INFO and the pub/sub
    connection's keep-alive."""
    stats = await redis.info("commandstats")
    return {name: int(stat["calls"]) for name, stat in stats.items()
            if name not in ("cmdstat_info", "cmdstat_ping", "cmdstat_subscribe")}


async def test_a_successful_authentication_costs_no_store_round_trip(make_client, settings, redis):
    http = await proxied(make_client, settings)
    svc = await add_client(http, "svc")
    store = provider_of(http).store
    # the client cache answers once its invalidation feed is up
    await eventually(lambda: store.client_cache.subscribed, "the client cache to subscribe", interval=0.01)
    for address in (ATTACKER, OTHER):  # some failures below the limit, from both addresses
        assert (await post(http, "/oauth2/token", CC, via(address, basic("svc", "guess"))))[0] == 401
    assert (await post(http, "/oauth2/token", CC, via(OTHER, svc.basic)))[0] == 200  # reads the client
    before = await command_counts(redis)
    for address in (ATTACKER, OTHER):
        assert (await post(http, "/oauth2/token", CC, via(address, svc.basic)))[0] == 200
    assert await command_counts(redis) == before
    # while a failure costs one round trip: the counter's MULTI/EXEC (Valkey counts INCR as incrby)
    assert (await post(http, "/oauth2/token", CC, via(ATTACKER, basic("svc", "guess"))))[0] == 401
    after = await command_counts(redis)
    spent = {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name, 0)}
    assert spent == {f"cmdstat_{name}": 1 for name in ("multi", "incrby", "expire", "ttl", "exec")}


@pytest.mark.parametrize("name", ["TOKENSRV_CLIENT_AUTH_MAX_FAILURES", "TOKENSRV_CLIENT_AUTH_FAILURE_WINDOW"])
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_throttle_settings_are_configuration_errors(name, value):
    from tokensrv.config import ConfigError, load_settings
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, redis_url="redis://x")


def test_throttle_settings_are_read_from_the_environment():
    from tokensrv.config import load_settings
    settings = load_settings({"TOKENSRV_CLIENT_AUTH_MAX_FAILURES": "5", "TOKENSRV_CLIENT_AUTH_FAILURE_WINDOW": "60"},
                             redis_url="redis://x")
    assert (settings.client_auth_max_failures, settings.client_auth_failure_window) == (5, 60)
