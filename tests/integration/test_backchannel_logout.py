"""OIDC Back-Channel Logout 1.0 against the real app and store: which clients a session ending
tells, the logout token they get (checked with tokensrv.verify), retries, refusals, the queue's
bound, and two servers sharing the queue. The relying parties are a real aiohttp server on
loopback (tests/helpers/backchannel.py).

Most tests drive the delivery by hand (`LogoutDelivery.step`, the round the server's task runs)
so that they know when it is done; one shows the server's own task delivering."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from tests.helpers.app import provider_of
from tests.helpers.backchannel import Receiver
from tests.helpers.ports import free_port
from tests.helpers.sso import REDIRECT, App, add_user, redeem, sign_in
from tokensrv.admin import operations as admin
from tokensrv.oauth.backchannel import EVENT
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.observability.metrics import server_metrics
from tokensrv.server.app import create_app
from tokensrv.server.outbound.logout_delivery import LogoutDelivery
from tokensrv.store.backchannel import LogoutJob
from tokensrv.verify import InvalidClaims, InvalidToken, TokenVerifier

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


async def start_server(aiohttp_client: Any, clock: Any, settings: Any, deliver: bool = False,
                       **changes: Any) -> TestClient:
    """tokensrv on a port of its own, its issuer its real URL (the verifier fetches its JWKS)."""
    port = free_port()
    settings = dataclasses.replace(settings, issuer=f"http://127.0.0.1:{port}", backchannel_retry_delay=1.0,
                                   **changes)
    app = create_app(settings, clock=clock, run_schedule=False, deliver_logouts=deliver)
    client: TestClient = await aiohttp_client(app, server_kwargs={"port": port})
    await provider_of(client).keys.tick()
    return client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rp = await Receiver().start()
    yield rp
    await rp.stop()


@pytest.fixture
async def server(aiohttp_client: Any, clock: Any, settings: Any, redis: Any) -> TestClient:
    return await start_server(aiohttp_client, clock, settings)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def delivery_of(client: TestClient, http: aiohttp.ClientSession, **options: Any) -> LogoutDelivery:
    return LogoutDelivery(provider_of(client), http, **options)


async def deliver_ready(*deliveries: LogoutDelivery) -> None:
    """Rounds of every delivery at once until none finds a job that is due."""
    while sum(await asyncio.gather(*(d.step(block_ms=None) for d in deliveries))):
        pass


async def add_rp(client: TestClient, client_id: str, uri: str | None) -> App:
    await admin.add_client(provider_of(client), client_id, ClientMetadata(public=True, redirect_uris=(REDIRECT,),
                           grant_types=("authorization_code", "refresh_token"), scope=("openid", "profile", "email"),
                           backchannel_logout_uri=uri))
    return App(client_id, None, REDIRECT)


async def signed_in(client: TestClient, app: App, username: str = "alice") -> dict[str, Any]:
    flow, answer = await sign_in(client, app, username)
    status, tokens = await redeem(client, flow, answer["code"])
    assert status == 200, tokens
    return tokens


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header_of(jwt: str) -> dict[str, Any]:
    segment = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def outcomes() -> dict[str, float]:
    registry = server_metrics().registry
    return {o: registry.get_sample_value("tokensrv_backchannel_logout_total", {"outcome": o}) or 0.0
            for o in ("delivered", "refused", "retried", "dropped", "queue_full")}


async def logout(client: TestClient, id_token: str) -> None:
    resp = await client.get("/oauth2/logout", params={"id_token_hint": id_token}, allow_redirects=False)
    assert resp.status in (200, 303), await resp.text()


async def test_logout_tells_each_client_of_the_session_once_and_no_other(server, receiver, http):
    rp_a = await add_rp(server, "rp-a", receiver.uri("/a"))
    rp_b = await add_rp(server, "rp-b", receiver.uri("/b"))
    rp_c = await add_rp(server, "rp-c", receiver.uri("/c"))
    plain = await add_rp(server, "plain", None)
    await add_user(server, "alice")
    await add_user(server, "bob", email="bob@example.org")
    await signed_in(server, rp_c, "bob")  # bob's session, in another browser
    server.session.cookie_jar.clear()
    a = await signed_in(server, rp_a)
    await signed_in(server, rp_a)  # a second code for the same client and session: still one job
    await signed_in(server, rp_b)
    await signed_in(server, plain)
    await logout(server, a["id_token"])
    await deliver_ready(delivery_of(server, http))
    assert [h.path for h in receiver.hits] == ["/a", "/b"] or [h.path for h in receiver.hits] == ["/b", "/a"]
    sid = claims_of(a["id_token"])["sid"]
    for hit in receiver.hits:
        assert hit.content_type == "application/x-www-form-urlencoded"
        assert claims_of(hit.token)["sid"] == sid
    assert await provider_of(server).store.logouts.logout_queue_length() == 0
    await logout(server, a["id_token"])  # again: the session's clients were told already
    await deliver_ready(delivery_of(server, http))
    assert len(receiver.hits) == 2


async def test_the_logout_token_is_what_the_spec_says_and_the_verify_helper_accepts_it(server, receiver, http,
                                                                                         clock):
    rp = await add_rp(server, "rp-a", receiver.uri("/a"))
    await add_user(server)
    tokens = await signed_in(server, rp)
    await logout(server, tokens["id_token"])
    await deliver_ready(delivery_of(server, http))
    [hit] = receiver.on("/a")
    header, claims = header_of(hit.token), claims_of(hit.token)
    assert header["typ"] == "logout+jwt" and header["kid"] and header["alg"] == "RS256"
    id_claims = claims_of(tokens["id_token"])
    assert claims["iss"] == id_claims["iss"] and claims["aud"] == "rp-a"
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims and "nonce" in id_claims
    assert 0 < claims["exp"] - claims["iat"] <= 120 and claims["jti"]
    async with TokenVerifier(provider_of(server).settings.issuer, "orders", clock=clock,
                             registry=CollectorRegistry()) as verifier:
        checked = await verifier.verify_logout_token(hit.token, audience="rp-a")
        assert checked["sid"] == id_claims["sid"]
        with pytest.raises(InvalidClaims):  # presented twice
            await verifier.verify_logout_token(hit.token, audience="rp-a")
        with pytest.raises(InvalidClaims):  # another RP's token
            await verifier.verify_logout_token(hit.token, audience="rp-b", refuse_replay=False)
        for other in (tokens["id_token"], tokens["access_token"]):  # our other tokens are no logout tokens
            with pytest.raises(InvalidToken):
                await verifier.verify_logout_token(other, audience="rp-a")


@pytest.mark.parametrize("end", ["revoke", "disable", "passwd"])
async def test_ending_every_session_of_a_user_tells_each_client_of_each(server, receiver, http, end):
    rp = await add_rp(server, "rp-a", receiver.uri("/a"))
    await add_user(server)
    first = await signed_in(server, rp)
    server.session.cookie_jar.clear()  # another browser, another session
    second = await signed_in(server, rp)
    p = provider_of(server)
    if end == "revoke":
        await admin.revoke_everywhere(p, "alice")
    elif end == "disable":
        await admin.set_disabled(p, "alice", True)
    else:
        await admin.set_password(p, "alice", "a new long password")
    await deliver_ready(delivery_of(server, http))
    sids = sorted(claims_of(h.token)["sid"] for h in receiver.on("/a"))
    assert sids == sorted(claims_of(t["id_token"])["sid"] for t in (first, second))
    await admin.revoke_everywhere(p, "alice")  # nothing is left to tell
    await deliver_ready(delivery_of(server, http))
    assert len(receiver.hits) == 2


async def test_a_failing_receiver_gets_the_token_on_a_later_attempt(server, receiver, http, clock):
    rp = await add_rp(server, "rp-a", receiver.uri("/a"))
    await add_user(server)
    tokens = await signed_in(server, rp)
    receiver.answers["/a"] = [500, 503]
    before = outcomes()
    await logout(server, tokens["id_token"])
    delivery = delivery_of(server, http)
    await deliver_ready(delivery)
    assert [h.status for h in receiver.hits] == [500]
    clock.advance(1.0)  # the first retry's delay (TOKENSRV_BACKCHANNEL_RETRY_DELAY here)
    await deliver_ready(delivery)
    assert [h.status for h in receiver.hits] == [500, 503]
    clock.advance(1.0)  # the delay doubles: not due yet
    await deliver_ready(delivery)
    assert len(receiver.hits) == 2
    clock.advance(1.0)
    await deliver_ready(delivery)
    assert [h.status for h in receiver.hits] == [500, 503, 200]
    assert len({claims_of(h.token)["jti"] for h in receiver.hits}) == 3  # signed afresh each time
    after = outcomes()
    assert after["retried"] - before["retried"] == 2 and after["delivered"] - before["delivered"] == 1
    assert await provider_of(server).store.logouts.logout_queue_length() == 0


async def test_a_refusing_receiver_is_not_asked_again(server, receiver, http, clock):
    rp = await add_rp(server, "rp-a", receiver.uri("/a"))
    await add_user(server)
    tokens = await signed_in(server, rp)
    receiver.answers["/a"] = [400]
    before = outcomes()
    await logout(server, tokens["id_token"])
    await deliver_ready(delivery_of(server, http))
    clock.advance(3600)
    await deliver_ready(delivery_of(server, http))
    assert [h.status for h in receiver.hits] == [400]
    assert outcomes()["refused"] - before["refused"] == 1
    assert await provider_of(server).store.logouts.logout_queue_length() == 0


async def test_attempts_are_bounded_and_an_unreachable_receiver_counts_as_failing(
        aiohttp_client, clock, settings, redis, receiver, http):
    server = await start_server(aiohttp_client, clock, settings, backchannel_max_attempts=3)
    nowhere = f"http://127.0.0.1:{free_port()}/bcl"  # nothing listens there
    rp_a = await add_rp(server, "rp-a", receiver.uri("/a"))
    rp_x = await add_rp(server, "rp-x", nowhere)
    await add_user(server)
    tokens = await signed_in(server, rp_a)
    await signed_in(server, rp_x)
    receiver.answers["/a"] = [500] * 10
    before = outcomes()
    await logout(server, tokens["id_token"])
    delivery = delivery_of(server, http)
    for _ in range(5):
        await deliver_ready(delivery)
        clock.advance(60)
    assert [h.status for h in receiver.hits] == [500, 500, 500]
    after = outcomes()
    assert after["dropped"] - before["dropped"] == 2 and after["retried"] - before["retried"] == 4
    assert await provider_of(server).store.logouts.logout_queue_length() == 0


async def test_the_queue_is_bounded_and_the_logout_happens_anyway(aiohttp_client, clock, settings, redis,
                                                                  receiver, http):
    server = await start_server(aiohttp_client, clock, settings, backchannel_queue_max=2)
    apps = [await add_rp(server, f"rp-{i}", receiver.uri(f"/{i}")) for i in range(3)]
    await add_user(server)
    tokens = [await signed_in(server, app) for app in apps]
    before = outcomes()
    resp = await server.get("/oauth2/logout", params={"id_token_hint": tokens[0]["id_token"]},
                            allow_redirects=False)
    assert resp.status == 200  # signed out (no redirect registered)
    assert await provider_of(server).store.logouts.logout_queue_length() == 2
    assert outcomes()["queue_full"] - before["queue_full"] == 1
    userinfo = await server.get("/oauth2/userinfo", headers={"Authorization": "Bearer " + tokens[2]["access_token"]})
    assert userinfo.status == 401  # the session ended for the client that was not told too
    await deliver_ready(delivery_of(server, http))
    assert len(receiver.hits) == 2


async def test_two_servers_on_one_store_deliver_each_job_exactly_once(aiohttp_client, clock, settings, redis,
                                                                      receiver, http):
    one = await start_server(aiohttp_client, clock, settings)
    two = await start_server(aiohttp_client, clock, settings)
    await add_rp(one, "rp-a", receiver.uri("/a"))
    jobs = [LogoutJob("rp-a", "sub-1", f"sid-{i}") for i in range(40)]
    assert await provider_of(one).store.logouts.enqueue_logouts(jobs, 1000) == 40
    first, second = delivery_of(one, http), delivery_of(two, http)
    await deliver_ready(first, second)
    sids = [claims_of(h.token)["sid"] for h in receiver.hits]
    assert sorted(sids) == sorted(j.sid for j in jobs)  # each once, none twice
    assert await provider_of(two).store.logouts.logout_queue_length() == 0


async def test_jobs_a_dead_server_took_are_delivered_by_another(server, receiver, http):
    await add_rp(server, "rp-a", receiver.uri("/a"))
    store = provider_of(server).store
    await store.logouts.enqueue_logouts([LogoutJob("rp-a", "sub-1", "sid-1")], 1000)
    await store.logouts.create_logout_group()
    taken = await store.logouts.read_logouts("died-mid-delivery", 10, None)  # never finished
    assert len(taken) == 1
    await deliver_ready(delivery_of(server, http, consumer="alive"))  # not stale yet (a minute by default)
    assert receiver.hits == []
    assert await store.logouts.prune_logout_consumers(0) == 1  # "alive", idle with nothing pending; not the dead one
    await deliver_ready(delivery_of(server, http, claim_idle_ms=0))
    assert [claims_of(h.token)["sid"] for h in receiver.hits] == ["sid-1"]
    assert await store.logouts.logout_queue_length() == 0


async def test_a_hint_from_another_browser_tells_the_clients_of_both_sessions(server, receiver, http):
    rp_a = await add_rp(server, "rp-a", receiver.uri("/a"))
    rp_b = await add_rp(server, "rp-b", receiver.uri("/b"))
    await add_user(server)
    first = await signed_in(server, rp_a)  # the first browser
    server.session.cookie_jar.clear()
    second = await signed_in(server, rp_b)  # the second one, where the logout happens
    await logout(server, first["id_token"])
    await deliver_ready(delivery_of(server, http))
    told = {h.path: claims_of(h.token)["sid"] for h in receiver.hits}
    assert told == {"/a": claims_of(first["id_token"])["sid"], "/b": claims_of(second["id_token"])["sid"]}


async def test_the_servers_own_task_delivers(aiohttp_client, clock, settings, redis, receiver):
    server = await start_server(aiohttp_client, clock, settings, deliver=True)
    rp = await add_rp(server, "rp-a", receiver.uri("/a"))
    await add_user(server)
    tokens = await signed_in(server, rp)
    await logout(server, tokens["id_token"])
    [hit] = await receiver.wait_for("/a")
    assert claims_of(hit.token)["sid"] == claims_of(tokens["id_token"])["sid"]


async def test_discovery_advertises_back_channel_logout_with_sessions(server):
    resp = await server.get("/.well-known/openid-configuration")
    doc = await resp.json()
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True
    assert "sid" in doc["claims_supported"]
