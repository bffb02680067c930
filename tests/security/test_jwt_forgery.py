"""Forged JWTs against every place that reads one: introspection (RFC 7662), userinfo (RFC 6750),
logout's id_token_hint (OIDC RP-Initiated Logout §2) and the downstream verifier.

Guards against RFC 8725 (JWT BCP) §2.1 and §3.1 (alg none, key confusion: CVE-2015-9235,
CVE-2015-2951), §3.10 and RFC 7515 §4.1.2-§4.1.6 (jku/jwk/x5u/x5c header keys: CVE-2018-0114),
RFC 7515 §4.1.11 (crit), §7.1 (compact serialisation, base64url without padding) and
RFC 8725 §3.11/§3.12 (token substitution: an ID token or another audience's token as an access token).
"""
from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.helpers import oauth as oauth_helpers
from tests.helpers.app import provider_of
from tests.helpers.clock import FakeClock
from tests.helpers.forgery import Material, forgeries, with_claims
from tests.helpers.sso import add_app, add_user, tokens_for
from tests.helpers.verify import b64, issuer_url, segment, start_issuer
from tokensrv.config import Settings
from tokensrv.keys.signing import jws_signature
from tokensrv.oauth import own_tokens as tokens
from tokensrv.verify import InvalidToken, TokenVerifier

pytestmark = pytest.mark.integration


@dataclass
class Target:
    client: TestClient
    resource_server: oauth_helpers.Registered  # a confidential client that may introspect
    verifier: TokenVerifier
    issued: dict[str, Any]  # a real token response for the app "web"
    material: Material
    fetched: list[str]  # every request the attacker's listener saw

    def sign(self, claims: dict[str, Any], typ: str = "at+jwt") -> str:
        return tokens.sign(provider_of(self.client), claims, typ)


@pytest.fixture
async def target(aiohttp_client: Any, aiohttp_server: Any, clock: FakeClock, settings: Settings,
                 redis: Redis) -> AsyncIterator[Target]:
    fetched: list[str] = []

    async def record(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({"keys": []})
    listener = web.Application()
    listener.router.add_route("*", "/{tail:.*}", record)
    attacker = await aiohttp_server(listener)

    client = await start_issuer(aiohttp_client, clock, settings)
    app = await add_app(client, "web", scopes=("openid", "profile"))
    rs = await oauth_helpers.add_client(client, "rs")
    await add_user(client)
    issued = await tokens_for(client, app, scope="openid profile")
    key = provider_of(client).keys.ring.signing
    assert key is not None and isinstance(key.key.public_key, rsa.RSAPublicKey)
    material = Material(issued["access_token"], key.key.public_key, key.public_jwk(), key.kid,
                        str(attacker.make_url("")).rstrip("/"))
    verifier = TokenVerifier(issuer_url(client), "web", clock=clock, registry=CollectorRegistry())
    await verifier.start()
    assert await verifier.verify(issued["access_token"])  # the genuine token passes: the setup is right
    yield Target(client, rs, verifier, issued, material, fetched)
    await verifier.close()


def form(data: dict[str, str]) -> io.BytesIO:
    """An urlencoded body as a stream: aiohttp warns about large bodies passed as bytes."""
    return io.BytesIO(urlencode(data).encode())


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def introspection_says_inactive(t: Target, token: str) -> None:
    resp = await t.client.post("/oauth2/introspect", data=form({"token": token}),
                               headers={**FORM, **t.resource_server.basic})
    if len(token) > 60_000:
        assert resp.status == 413  # refused before it is read
        return
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"active": False}


async def userinfo_refuses(t: Target, token: str) -> None:
    resp = await t.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    if len(token) > 8000:
        assert resp.status in (400, 431)  # the header is over aiohttp's limit
        return
    body = await resp.json()
    assert (resp.status, body["error"]) in ((401, "invalid_token"), (400, "invalid_request")), body


async def logout_refuses_hint(t: Target, token: str) -> None:
    resp = await t.client.post("/oauth2/logout", data=form({"id_token_hint": token}), headers=FORM,
                               allow_redirects=False)
    assert resp.status == (413 if len(token) > 60_000 else 400), await resp.text()


async def verifier_refuses(t: Target, token: str) -> None:
    with pytest.raises(InvalidToken):
        await t.verifier.verify(token)


async def refused_everywhere(t: Target, token: str) -> None:
    await introspection_says_inactive(t, token)
    await userinfo_refuses(t, token)
    await logout_refuses_hint(t, token)
    await verifier_refuses(t, token)


async def test_every_forgery_is_refused_everywhere_and_nothing_is_fetched(target: Target) -> None:
    """RFC 8725 §2.1, §3.1, §3.10; CVE-2015-9235, CVE-2015-2951, CVE-2018-0114: alg none in every
    case, HS256 with our public key in every encoding, an attacker's key under our kid, keys
    embedded in or pointed at by the header, stripped/truncated/re-encoded signatures, JSON
    serialisation and a 1 MB token are all refused, and no header URL is ever fetched."""
    for name, forged in forgeries(target.material).items():
        try:
            await refused_everywhere(target, forged)
        except AssertionError as exc:
            raise AssertionError(f"forgery {name!r} was not refused: {exc}") from exc
    assert target.fetched == []


async def test_crit_header_with_an_unknown_extension_is_refused(target: Target) -> None:
    """RFC 7515 §4.1.11: a token whose `crit` names an extension we do not understand is invalid,
    even with a good signature."""
    key = provider_of(target.client).keys.ring.signing
    assert key is not None
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", "crit": ["urn:x-evil"], "urn:x-evil": True}
    signing_input = f"{segment(header)}.{segment(target.material.claims)}".encode()
    signature = b64(jws_signature(key, signing_input))
    await refused_everywhere(target, signing_input.decode() + "." + signature)


async def test_claims_of_the_wrong_type_are_never_accepted_nor_a_500(target: Target) -> None:
    """RFC 7519 §4.1 / RFC 8725 §3.9: claims of the wrong JSON type, even under our own signature,
    never make a token valid to the verifier, and never make the server answer 500."""
    for name, token in with_claims(target.sign, target.material.claims).items():
        with pytest.raises(InvalidToken):
            await target.verifier.verify(token)
        resp = await target.client.post("/oauth2/introspect", data={"token": token},
                                        headers=target.resource_server.basic)
        assert resp.status == 200, (name, await resp.text())
        resp = await target.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert resp.status < 500, (name, await resp.text())


async def test_an_id_token_is_not_an_access_token(target: Target) -> None:
    """RFC 8725 §3.11/§3.12, RFC 9068 §2.1 (typ at+jwt): the ID token is refused where an access
    token is expected, and the access token is refused as an id_token_hint."""
    id_token = target.issued["id_token"]
    await introspection_says_inactive(target, id_token)
    await userinfo_refuses(target, id_token)
    await verifier_refuses(target, id_token)
    await logout_refuses_hint(target, target.issued["access_token"])


async def test_another_audiences_token_is_refused_by_the_verifier(target: Target) -> None:
    """RFC 9068 §4, RFC 8725 §3.9: a token minted for another resource server does not pass."""
    other = await oauth_helpers.add_client(target.client, "billing-svc", audience="billing")
    status, body, _ = await oauth_helpers.token(target.client, other, grant_type="client_credentials")
    assert status == 200, body
    await verifier_refuses(target, body["access_token"])
