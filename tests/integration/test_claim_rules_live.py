"""Two in-process instances over one store: claim rules set through one are followed by the other
without a restart, in its next token, its UserInfo, its discovery and its consent page, with no
store read on the request path (counted by the tracing spans of the store's operations); cleared,
both fall back to the TOKENSRV_CLAIMS file; a missed announcement is made up for on resubscription."""
from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD, add_app, claims_of, login
from tests.helpers.poll import eventually
from tests.helpers.sso import REDIRECT, App, begin, login_page, submit
from tokensrv.admin import operations as admin
from tokensrv.admin.claim_rules import clear_claim_rules, set_claim_rules
from tokensrv.claims import load_rules
from tokensrv.oauth.browser.consent import scope_words
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.server.app import create_app
from tokensrv.store import keyspace

RULES = {"scopes": {"department": {"department": {"attribute": "department"}}},
         "clients": {"app": {"tier": {"value": "gold"}}}}
FILE_RULES = {"scopes": {"team": {"team": {"attribute": "team"}}}}
ATTRIBUTES = {"department": "research", "team": "blue"}


@pytest.fixture
def file_settings(settings, tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(FILE_RULES))
    return dataclasses.replace(settings, claims=load_rules(path))


@pytest.fixture
async def pair(make_client, aiohttp_client, file_settings, clock, tracer_provider) -> tuple[TestClient, TestClient]:
    """Instance one (where the operator acts), and instance two, traced (where tokens are asked)."""
    one = await make_client(file_settings)
    two: TestClient = await aiohttp_client(create_app(file_settings, clock=clock, run_schedule=False,
                                                      tracer_provider=tracer_provider))
    await admin.add_user(provider_of(one), "alice", PASSWORD, "alice@example.org",
                         ("reader",), (), ATTRIBUTES)
    return one, two


async def scopes_supported(client: TestClient) -> list[str]:
    doc: dict[str, Any] = await (await client.get("/.well-known/openid-configuration")).json()
    return list(doc["scopes_supported"])


def reads_of_the_rules(exporter: InMemorySpanExporter) -> int:
    return sum(1 for span in exporter.get_finished_spans() if span.name == "store.get_rules")


async def test_rules_set_on_one_instance_are_followed_by_the_other_without_a_store_read_per_request(
        pair, exporter) -> None:
    one, two = pair
    app = await add_app(one, scopes=("openid", "department", "team"))
    before = claims_of((await login(two, app, scope="openid department team"))["access_token"])
    assert before["team"] == "blue" and "department" not in before and "tier" not in before  # the file's rules
    assert "department" not in await scopes_supported(two)

    assert (await set_claim_rules(provider_of(one), RULES))["changed"]
    await eventually(lambda: _has(two, "department"), "instance two lists the new scope")
    assert "team" not in await scopes_supported(two)  # the store's document wins over the file
    reads = reads_of_the_rules(exporter)
    for _ in range(3):
        after = claims_of((await login(two, app, scope="openid department team"))["access_token"])
        assert after["department"] == "research" and after["tier"] == "gold" and "team" not in after
    bearer = {"Authorization": f"Bearer {(await login(two, app, scope='openid department'))['access_token']}"}
    info = await (await two.get("/oauth2/userinfo", headers=bearer)).json()
    assert info["department"] == "research"
    assert reads_of_the_rules(exporter) == reads  # not one store read for four tokens and a UserInfo


async def test_cleared_rules_fall_back_to_the_file_on_every_instance(pair) -> None:
    one, two = pair
    await set_claim_rules(provider_of(one), RULES)
    await eventually(lambda: _has(two, "department"), "instance two lists the store's scope")
    assert (await clear_claim_rules(provider_of(one)))["changed"]
    await eventually(lambda: _has(two, "team"), "instance two lists the file's scope again")
    assert "department" not in await scopes_supported(two)
    assert scope_words(provider_of(two), "team") == "See your team"


async def test_a_change_announced_while_the_subscription_was_down_is_read_on_resubscription(pair, redis) -> None:
    """A document written with no announcement stands for one published while the subscription was
    lost: the instance reads the document again once it has subscribed again."""
    one, two = pair
    await redis.set(keyspace.CLAIM_RULES, json.dumps({"version": 7, "document": RULES, "updated_at": 0}))
    assert "department" not in await scopes_supported(two)  # nothing announced: not seen yet
    await redis.client_kill_filter(_type="pubsub")  # every instance's subscription drops, and comes back
    await eventually(lambda: _has(two, "department"), "instance two reads the document on resubscribing")
    await eventually(lambda: _has(one, "department"), "and so does instance one")


async def _has(client: TestClient, scope: str) -> bool:
    return scope in await scopes_supported(client)


async def test_a_store_emptied_and_set_again_is_followed_though_its_version_starts_over(pair, redis) -> None:
    one, two = pair
    await set_claim_rules(provider_of(one), RULES)
    await eventually(lambda: _has(two, "department"), "instance two lists the first document's scope")
    await redis.delete(keyspace.CLAIM_RULES)  # a store emptied (or restored from an older backup)
    division = {"scopes": {"division": {"division": {"attribute": "division"}}}}
    assert (await set_claim_rules(provider_of(one), division))["version"] == 1  # the same version as before
    await eventually(lambda: _has(two, "division"), "instance two follows the new document")


async def test_a_bad_document_written_past_the_checks_is_refused_and_the_rules_stay(pair, redis, caplog) -> None:
    one, two = pair
    await set_claim_rules(provider_of(one), RULES)
    await eventually(lambda: _has(two, "department"), "instance two lists the scope")
    bad = {"clients": {"app": {"exp": {"value": 1}}}}  # by hand: an override of a registered claim
    await redis.set(keyspace.CLAIM_RULES, json.dumps({"version": 9, "document": bad, "updated_at": 0}))
    await redis.publish(keyspace.CLAIM_RULES_CHANGES, "9")
    await eventually(lambda: sum("clients.app.exp" in r.getMessage() for r in caplog.records) >= 2,
                     "both instances log the refusal")
    assert await _has(two, "department") and provider_of(two).claim_rules.current.clients["app"].static == {
        "tier": "gold"}
    await redis.set(keyspace.CLAIM_RULES, "{not json")  # not even a record: logged, and the follower goes on
    await redis.publish(keyspace.CLAIM_RULES_CHANGES, "10")
    await eventually(lambda: sum("unreadable" in r.getMessage() for r in caplog.records) >= 2,
                     "both instances log the unreadable record")
    division = {"scopes": {"division": {"division": {"attribute": "division"}}}}
    await redis.set(keyspace.CLAIM_RULES, json.dumps({"version": 11, "document": division, "updated_at": 0}))
    await redis.publish(keyspace.CLAIM_RULES_CHANGES, "11")
    await eventually(lambda: _has(two, "division"), "instance two still follows the store")


async def test_the_consent_page_of_the_other_instance_describes_a_scope_of_the_new_rules(pair) -> None:
    one, two = pair
    await admin.add_client(provider_of(one), "printer", ClientMetadata(
        public=True, redirect_uris=(REDIRECT,), grant_types=("authorization_code",), scope=("openid", "department"),
        consent_required=True))
    await set_claim_rules(provider_of(one), RULES)
    await eventually(lambda: _has(two, "department"), "instance two lists the new scope")
    _, resp = await begin(two, App("printer", None, REDIRECT), scope="openid department")
    request_id, csrf = await login_page(two, resp.headers["Location"])
    location = (await submit(two, request_id, csrf)).headers["Location"]
    assert urlsplit(location).path == "/consent", location
    html = await (await two.get(location)).text()
    assert "See your department" in html  # the account page describes a consent's scopes the same way
    assert scope_words(provider_of(two), "department") == "See your department"
