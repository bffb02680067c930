"""/metrics after a scripted run: every family an operator watches is there, with values that
match what the run did. In-process (one worker), so values are compared as before/after deltas."""
from __future__ import annotations

import platform
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.exceptions import ResponseError

import tokensrv.verify
import tokensrv.version
from tests.helpers import sso as sso_helpers
from tests.helpers.app import provider_of
from tests.helpers.metrics import Samples, scrape
from tests.helpers.oauth import (
    add_app,
    add_client,
    add_user,
    login,
    refresh,
    revoke,
    token,
)
from tokensrv.admin import operations as admin


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every label set that includes `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def scripted_run(client: TestClient, clock: Any) -> dict[str, Any]:
    """Tokens by each grant, a refresh reuse, revocations, a failed and a rate-limited login, a rotation."""
    svc = await add_client(client, "svc", grant_types=("client_credentials",))
    app = await add_app(client)
    await add_user(client)
    status, _, _ = await token(client, svc, grant_type="client_credentials")
    assert status == 200
    first = await login(client, app)
    status, _, _ = await refresh(client, app, first["refresh_token"])
    assert status == 200
    clock.advance(provider_of(client).settings.refresh_reuse_grace + 1)  # past the retry window
    status, body, _ = await refresh(client, app, first["refresh_token"])  # reuse: the family dies
    assert (status, body["error"]) == (400, "invalid_grant")
    web = await sso_helpers.add_app(client)
    await sso_helpers.tokens_for(client, web)  # authorization_code, public client
    await revoke(client, svc, (await token(client, svc, grant_type="client_credentials"))[1]["access_token"])
    status, _, _ = await token(client, app, grant_type="password", username="alice", password="wrong password")
    assert status == 400
    statuses = [(await token(client, app, grant_type="password", username="bob", password="nope nope"))[0]
                for _ in range(3)]
    # login_max_failures=2 in this test, per username and per address: the address is over first
    assert statuses == [400, 429, 429]
    p = provider_of(client)
    with pytest.raises(ResponseError):
        await p.store.redis.execute_command("NO-SUCH-COMMAND")  # a store error, counted
    before = p.keys.ring.signing.kid
    await admin.rotate_keys(p)
    clock.advance(p.settings.key_publish_delay + 1)
    await p.keys.tick()
    assert p.keys.ring.signing.kid != before
    return {"old_kid": before, "new_kid": p.keys.ring.signing.kid}


async def test_metrics_after_a_scripted_run(make_client: Any, settings: Any, clock: Any) -> None:
    client = await make_client(settings, login_max_failures=2)
    before, _ = await scrape(client)
    kids = await scripted_run(client, clock)
    after, names = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    for family in ("tokensrv_http_requests", "tokensrv_http_request_duration_seconds",
                   "tokensrv_tokens_issued", "tokensrv_refresh_reuse_detected", "tokensrv_revocations",
                   "tokensrv_login_failures", "tokensrv_rate_limited", "tokensrv_argon2_queue_depth",
                   "tokensrv_http_requests_in_flight", "tokensrv_store_command_duration_seconds",
                   "tokensrv_store_errors", "tokensrv_signing_key", "tokensrv_key_rotation_next_step_seconds"):
        assert family in names, family
    assert delta("tokensrv_tokens_issued_total", grant_type="client_credentials", client_type="confidential") == 2
    assert delta("tokensrv_tokens_issued_total", grant_type="password", client_type="confidential") == 1
    assert delta("tokensrv_tokens_issued_total", grant_type="refresh_token", client_type="confidential") == 1
    assert delta("tokensrv_tokens_issued_total", grant_type="authorization_code", client_type="public") == 1
    assert delta("tokensrv_refresh_reuse_detected_total") == 1
    assert delta("tokensrv_revocations_total", kind="family") == 1  # the reused family
    assert delta("tokensrv_revocations_total", kind="jti") >= 2  # its access tokens, and the revoked one
    assert delta("tokensrv_login_failures_total") == 2  # the wrong password, and bob's first
    assert delta("tokensrv_rate_limited_total", route="/oauth2/token") == 2
    assert delta("tokensrv_http_requests_total", route="/oauth2/token", method="POST", status="200") == 5
    assert delta("tokensrv_http_requests_total", route="/oauth2/token", status="429") == 2
    assert delta("tokensrv_http_request_duration_seconds_count", route="/oauth2/token") == 10
    assert delta("tokensrv_store_command_duration_seconds_count") > 10
    assert delta("tokensrv_store_errors_total", command="no-such-command") == 1
    assert value(after, "tokensrv_argon2_queue_depth") == 0  # nothing hashing now
    assert value(after, "tokensrv_http_requests_in_flight") == 1  # the scrape itself
    assert value(after, "tokensrv_signing_key", kid=kids["new_kid"], state="current") == 1
    assert value(after, "tokensrv_signing_key", kid=kids["old_kid"], state="retired") == 1
    longest = settings.max_token_ttl + settings.key_publish_delay
    assert 0 < value(after, "tokensrv_key_rotation_next_step_seconds") <= longest


async def test_route_labels_are_canonical_never_raw_paths(client: TestClient) -> None:
    await client.get("/no/such/path?code=abc")
    await client.get("/static/nothing-here.css")
    samples, _ = await scrape(client)
    routes = {dict(labels)["route"] for (name, labels) in samples if name == "tokensrv_http_requests_total"}
    assert "unmatched" in routes
    assert not any("no/such" in r or "code" in r or "nothing-here" in r for r in routes), routes


async def test_the_build_info_series_names_the_running_versions(client: TestClient) -> None:
    samples, _ = await scrape(client)
    [labels] = [dict(labels) for (name, labels) in samples if name == "tokensrv_build_info"]
    assert labels == {"version": tokensrv.version.__version__, "verify_version": tokensrv.verify.__version__,
                      "python": platform.python_version()}
    assert samples[("tokensrv_build_info", frozenset(labels.items()))] == 1
