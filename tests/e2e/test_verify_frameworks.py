"""The FastAPI, Flask and Django examples (examples/downstream), each behind its framework's own
test client, verifying tokens of a real `tokensrv serve` over a real Valkey: RFC 6750 answers,
scopes per route, no request to tokensrv per request, a revocation by `tokensrv token revoke`
reaching the service, DPoP-bound tokens with real proofs, and a real back-channel logout token."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from examples.orders.app import ENDED_SESSIONS
from examples.orders.app import create_app as create_orders
from tests.helpers.backchannel import Receiver
from tests.helpers.downstream import SERVICES, Answer, Issuer, Service, bearer, verifier_options
from tests.helpers.dpop import DPoPKey
from tests.helpers.live import LiveServer
from tests.helpers.poll import eventually_sync
from tests.helpers.verify import issuer_requests
from tests.helpers.verify_live import DEADLINE, payload
from tokensrv.verify import TokenVerifier

ALGS = 'algs="ES256 RS256 PS256 EdDSA"'
MakeService = Callable[[LiveServer], AbstractContextManager[Service]]


@pytest.fixture(params=sorted(SERVICES))
def make_service(request: pytest.FixtureRequest) -> MakeService:
    return SERVICES[request.param]


@pytest.fixture
def issuer(live_server: LiveServer) -> Issuer:
    return Issuer(live_server)


@pytest.fixture
def service(make_service: MakeService, live_server: LiveServer, issuer: Issuer) -> Iterator[Service]:
    with make_service(live_server) as service:
        yield service


def joined(challenges: list[str]) -> str:
    """Django sends the challenges in one header, the others one header each: compare them joined."""
    return ", ".join(challenges)


def test_rfc6750_answers_and_scopes_per_route(service: Service, issuer: Issuer) -> None:
    token = issuer.token("orders:read")
    ok = service.get("/orders", bearer(token))
    assert (ok.status, ok.body) == (200, {"orders": []})
    missing = service.get("/orders", {})
    assert missing.status == 401
    assert joined(missing.challenges) == f'Bearer realm="orders", DPoP realm="orders", {ALGS}'
    assert missing.body["error"] == "unauthorized"
    wrong_scope = service.get("/orders", bearer(issuer.token("openid")))
    assert (wrong_scope.status, wrong_scope.body["error"]) == (403, "insufficient_scope")
    assert wrong_scope.challenges == ['Bearer realm="orders", error="insufficient_scope", scope="orders:read"']
    bad = service.get("/orders", bearer(token + "x"))
    assert (bad.status, bad.challenges) == (401, ['Bearer realm="orders", error="invalid_token"'])
    malformed = service.get("/orders", {"Authorization": "Bearer a b"})
    assert (malformed.status, malformed.body["error"]) == (400, "invalid_request")


def test_requests_cost_tokensrv_nothing_and_a_revocation_reaches_the_service(
        service: Service, issuer: Issuer) -> None:
    token = issuer.token("orders:read")
    before = issuer_requests(service.verifier)
    assert before == 2  # discovery and the JWKS, at start
    for _ in range(20):
        assert service.get("/orders", bearer(token)).status == 200
    assert issuer_requests(service.verifier) == before
    issuer.revoke(token)

    def refused() -> Answer | None:
        answer = service.get("/orders", bearer(token))
        return answer if answer.status == 401 else None
    revoked = eventually_sync(refused, "the service refuses the revoked token", timeout=DEADLINE)
    assert revoked is not None
    assert revoked.challenges == ['Bearer realm="orders", error="invalid_token"']
    assert revoked.body == {"error": "invalid_token", "error_description": "the access token has been revoked"}
    assert issuer_requests(service.verifier) == before


def test_dpop_bound_tokens_need_their_proof(service: Service, issuer: Issuer) -> None:
    key = DPoPKey()
    tokens = issuer.tokens("orders:read", dpop=key, now=time.time())
    assert tokens["token_type"] == "DPoP"
    token, url = tokens["access_token"], service.base_url + "/orders"
    proof = key.proof("GET", url, time.time(), access_token=token)
    ok = service.get("/orders", {"Authorization": f"DPoP {token}", "DPoP": proof})
    assert (ok.status, ok.body) == (200, {"orders": []})
    replayed = service.get("/orders", {"Authorization": f"DPoP {token}", "DPoP": proof})
    assert replayed.status == 401
    assert replayed.challenges == [f'DPoP realm="orders", error="invalid_dpop_proof", {ALGS}']
    as_bearer = service.get("/orders", bearer(token))
    assert (as_bearer.status, as_bearer.challenges) == (401, [f'DPoP realm="orders", error="invalid_token", {ALGS}'])
    other_key = DPoPKey().proof("GET", url, time.time(), access_token=token)
    refused = service.get("/orders", {"Authorization": f"DPoP {token}", "DPoP": other_key})
    assert (refused.status, refused.body["error"]) == (401, "invalid_token")


async def delivered_logout_token(live_server: LiveServer) -> tuple[str, dict[str, Any]]:
    """A logout token tokensrv delivered for alice's session (to a real receiver on loopback,
    tests/helpers/backchannel.py) once `tokensrv user revoke alice` ended it; and her tokens."""
    receiver = await Receiver().start()
    try:
        issuer = Issuer(live_server, backchannel_logout_uri=receiver.uri("/backchannel"))
        tokens = issuer.tokens("openid orders:read")
        live_server.cli("user", "revoke", "alice")
        [hit] = await receiver.wait_for("/backchannel")
    finally:
        await receiver.stop()
    assert hit.token is not None
    return hit.token, tokens


async def test_the_backchannel_logout_receiver_accepts_a_real_logout_token(
        make_service: MakeService, live_server: LiveServer) -> None:
    """The token tokensrv delivered, POSTed to the service's receiver, ends the session; a replay
    or an access token is refused with 400 (OIDC Back-Channel Logout 1.0 §2.8)."""
    logout_token, tokens = await delivered_logout_token(live_server)
    with make_service(live_server) as service:
        accepted = service.post_form("/backchannel-logout", {"logout_token": logout_token})
        assert accepted.status == 200
        assert service.ended_sessions == [payload(logout_token)["sid"]]  # the example ended the session it names
        replayed = service.post_form("/backchannel-logout", {"logout_token": logout_token})
        assert (replayed.status, replayed.body["error"]) == (400, "invalid_request")
        not_logout = service.post_form("/backchannel-logout", {"logout_token": tokens["access_token"]})
        assert not_logout.status == 400
        assert service.post_form("/backchannel-logout", {}).status == 400
        assert len(service.ended_sessions) == 1


async def test_the_aiohttp_logout_receiver_accepts_a_real_logout_token(
        aiohttp_client: Any, live_server: LiveServer) -> None:
    """aiohttp's receiver (tokensrv.verify.middleware.logout_receiver) in the aiohttp orders example."""
    logout_token, tokens = await delivered_logout_token(live_server)
    options = verifier_options(live_server)
    registry = options.pop("registry")
    app = create_orders(TokenVerifier(options.pop("issuer"), options.pop("audience"), registry=registry, **options),
                        registry)
    client = await aiohttp_client(app)
    resp = await client.post("/backchannel-logout", data={"logout_token": logout_token})
    assert (resp.status, resp.headers["Cache-Control"]) == (200, "no-store")
    assert app[ENDED_SESSIONS] == [payload(logout_token)["sid"]]
    for refused in ({"logout_token": logout_token}, {"logout_token": tokens["access_token"]}, {}):
        resp = await client.post("/backchannel-logout", data=refused)
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_request")
    assert len(app[ENDED_SESSIONS]) == 1
