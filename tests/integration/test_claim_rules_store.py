"""The claim rules document in the store (tokensrv/admin/claim_rules.py, store/claim_rules.py):
checked as the TOKENSRV_CLAIMS file is, with errors naming the entry; versioned; an unchanged
document is neither written nor announced; clearing falls back to the file."""
from __future__ import annotations

import json

import pytest

from tests.helpers.app import provider_of
from tokensrv.admin.claim_rules import clear_claim_rules, effective_claim_rules, get_claim_rules, set_claim_rules
from tokensrv.admin.operations import AdminError
from tokensrv.claims import load_rules
from tokensrv.store import keyspace

RULES = {"scopes": {"department": {"department": {"attribute": "department"}}},
         "clients": {"billing": {"tier": {"value": "gold"}}}}


async def test_set_get_and_clear_with_versions(client) -> None:
    p = provider_of(client)
    assert await get_claim_rules(p) is None
    result = await set_claim_rules(p, RULES)
    assert result == {"changed": True, "version": 1, "scopes": ["department"], "clients": ["billing"]}
    assert (await get_claim_rules(p))["document"] == RULES
    assert (await effective_claim_rules(p))["source"] == "store"
    assert p.claim_rules.current.scopes == {"department": (("department", "department"),)}  # this process at once
    assert (await clear_claim_rules(p)) == {"changed": True, "version": 2}
    assert await get_claim_rules(p) is None
    assert (await clear_claim_rules(p)) == {"changed": False, "version": 2}
    assert (await set_claim_rules(p, RULES))["version"] == 3  # the version only grows
    assert (await effective_claim_rules(p))["document"] == RULES


@pytest.mark.parametrize(("document", "message"), [
    ([], "the document: must be a JSON object"),
    ({"scope": {}}, "unknown entry 'scope'"),
    ({"scopes": {"openid": {"x": {"attribute": "x"}}}}, "scopes.openid: not a scope token, or a built-in scope"),
    ({"scopes": {"dept": {"sub": {"attribute": "x"}}}}, "scopes.dept.sub: 'sub' is a registered"),
    ({"clients": {"billing": {"tier": {"value": "x" * 300}}}}, "clients.billing.tier: the value must be at most"),
    ({"clients": {"billing": {"tier": {"attribute": "password"}}}}, "clients.billing.tier: 'password' cannot be"),
])
async def test_a_bad_document_is_refused_with_its_path_and_nothing_is_stored(client, redis, document, message) -> None:
    with pytest.raises(AdminError) as caught:
        await set_claim_rules(provider_of(client), document)
    assert str(caught.value).startswith(message), caught.value
    assert "\n" not in str(caught.value)
    assert await redis.get(keyspace.CLAIM_RULES) is None


async def test_an_unchanged_document_is_neither_written_nor_announced(client, redis) -> None:
    p = provider_of(client)
    await set_claim_rules(p, RULES)
    listener = redis.pubsub()
    await listener.subscribe(keyspace.CLAIM_RULES_CHANGES)
    before = await redis.get(keyspace.CLAIM_RULES)
    reordered = {"clients": RULES["clients"], "scopes": RULES["scopes"]}  # the same document
    assert (await set_claim_rules(p, reordered)) == {"changed": False, "version": 1, "scopes": ["department"],
                                                     "clients": ["billing"]}
    assert await redis.get(keyspace.CLAIM_RULES) == before
    await set_claim_rules(p, {"scopes": {}})  # a change: announced, after nothing else
    messages = []
    while len(messages) < 2:  # the subscription's confirmation, then the one announcement
        message = await listener.get_message(timeout=5)
        assert message is not None
        messages.append(message)
    assert [m["type"] for m in messages] == ["subscribe", "message"] and messages[1]["data"] == "2"
    await listener.aclose()


async def test_clearing_falls_back_to_the_file_then_to_the_built_in_scopes(make_client, settings, tmp_path) -> None:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"scopes": {"team": {"team": {"attribute": "team"}}}}))
    p = provider_of(await make_client(settings, claims=load_rules(path)))
    assert (await effective_claim_rules(p))["source"] == "file"
    await set_claim_rules(p, RULES)
    assert list(p.claim_rules.current.scopes) == ["department"]
    await clear_claim_rules(p)
    assert list(p.claim_rules.current.scopes) == ["team"]
    effective = await effective_claim_rules(p)
    assert effective["source"] == "file" and list(effective["document"]["scopes"]) == ["team"]
    bare = provider_of(await make_client(settings))
    assert (await effective_claim_rules(bare)) == {"source": "built-in", "version": None,
                                                    "document": {"scopes": {}, "clients": {}}}
