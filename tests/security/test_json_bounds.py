"""Issue 21, item 1: every JSON document from outside is parsed with bounded size and depth.

Hostile documents (nesting far beyond MAX_DEPTH, which made json.loads raise RecursionError and
the endpoints answer 500; NaN, numbers beyond a double, repeated names, non-UTF-8, lone
surrogates, non-objects) are fed to every entry point: client assertions at the five endpoints
that authenticate clients, DPoP proofs, registration bodies (POST and PUT), tokens read by the
server, tokens, logout tokens and proofs read by tokensrv.verify, and fetched JWKS and discovery
documents. Each answers its own precise error: never a 500, never a traceback in the log.

Hypothesis raises Python's recursion limit while it runs, so under @given json.loads survives
depths that crash it in a server: the explicit 1000-deep tests are the ones that failed before."""
from __future__ import annotations

import base64
import json
import logging
import warnings
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws
from prometheus_client import CollectorRegistry

from tests.helpers.app import provider_of
from tests.helpers.assertion import JWKSServer, assertion_form, claims_for, new_key, public_jwks, sign
from tests.helpers.clock import FakeClock
from tests.helpers.dpop import DPoPKey
from tests.helpers.fuzz import FUZZ
from tests.helpers.json_docs import ODD, hostile, nested
from tests.helpers.oauth import Registered, add_client
from tests.helpers.verify import FunctionFetcher, Signer, make_verifier
from tokensrv.admin import operations as admin
from tokensrv.cli.commands import read_jwks
from tokensrv.cli.console import CLIError
from tokensrv.cli.device_login import device_flow
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.params import MAX_VALUE
from tokensrv.verify import InvalidDPoPProof, MalformedToken, TokenVerifier, VerifierUnavailable
from tokensrv.verify.dpop import check_proof
from tokensrv.verify.json_limits import MAX_DEPTH

pytestmark = pytest.mark.integration

CLIENT_AUTH_PATHS = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/par",
                     "/oauth2/device_authorization")
REGISTER = "/oauth2/register"
WEB = {"redirect_uris": ["https://rp.example.org/cb"], "grant_types": ["authorization_code"]}
HEADER = {"alg": "RS256", "kid": "k1"}


def fits_a_header(doc: bytes) -> bool:
    """Small enough that a compact JWS carrying it stays under the 8 KiB token limit (and, as a
    DPoP header, under aiohttp's 8190 bytes per header line)."""
    return len(doc) < 5000


token_sized = hostile.filter(fits_a_header)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(header: bytes, payload: bytes, signature: bytes = b"sig") -> str:
    return f"{b64(header)}.{b64(payload)}.{b64(signature)}"


def in_header_or_payload(doc: bytes, where: str) -> str:
    if where == "header":
        return compact(doc, json.dumps({"iss": "svc", "sub": "svc"}).encode())
    return compact(json.dumps(HEADER).encode(), doc)


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, logged


async def error_of(resp: Any) -> str:
    assert resp.content_type == "application/json", await resp.text()
    error = (await resp.json())["error"]
    assert isinstance(error, str)
    return error


# ---- the five endpoints that authenticate clients: a client assertion ----

@pytest.fixture
async def svc(client: TestClient) -> Registered:
    await admin.add_client(provider_of(client), "svc", ClientMetadata(
        grant_types=("client_credentials",), token_endpoint_auth_method="private_key_jwt",
        jwks=public_jwks(new_key(kid="k1"))))
    return Registered("svc", None)


@pytest.mark.parametrize("path", CLIENT_AUTH_PATHS)
@pytest.mark.parametrize("where", ["header", "payload"])
async def test_a_1000_deep_client_assertion_is_invalid_client(client: TestClient, svc: Registered, path: str,
                                                              where: str, caplog: pytest.LogCaptureFixture) -> None:
    """The issue's probe: an unverified payload of 1000 nested arrays answered 500 at each."""
    assertion = in_header_or_payload(nested(1000), where)
    resp = await client.post(path, data=assertion_form(assertion, grant_type="client_credentials", token="x"))
    assert resp.status == 401 and await error_of(resp) == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    no_traceback(caplog)


@FUZZ
@given(doc=token_sized, where=st.sampled_from(["header", "payload"]), path=st.sampled_from(CLIENT_AUTH_PATHS))
async def test_hostile_client_assertions_are_invalid_client(client: TestClient, svc: Registered, doc: bytes,
                                                            where: str, path: str) -> None:
    assertion = in_header_or_payload(doc, where)
    resp = await client.post(path, data=assertion_form(assertion, grant_type="client_credentials", token="x"))
    if len(assertion) > MAX_VALUE:  # a form parameter that long is refused before anyone reads it
        assert resp.status == 400 and await error_of(resp) == "invalid_request"
        return
    assert resp.status == 401 and await error_of(resp) == "invalid_client", (doc[:60], where, path)
    assert "WWW-Authenticate" in resp.headers


# ---- DPoP proofs at the token endpoint ----

def proof_with(key: DPoPKey, header: bytes | None = None, payload: bytes | None = None) -> str:
    """A proof whose header or payload is `doc`; with a hostile payload it is genuinely signed,
    so that the payload is what gets parsed."""
    if header is not None:
        return compact(header, b"{}")
    protected = {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(jws.serialize_compact(protected, payload or b"", key.key, algorithms=[key.alg]))


@pytest.fixture
async def rs(client: TestClient) -> Registered:
    """A client with a secret, for the endpoints where the client must be known first."""
    return await add_client(client, "rs")


@FUZZ
@given(doc=token_sized, where=st.sampled_from(["header", "payload"]))
async def test_hostile_dpop_proofs_are_invalid_dpop_proof(client: TestClient, rs: Registered, doc: bytes,
                                                          where: str) -> None:
    key = DPoPKey()
    proof = proof_with(key, header=doc) if where == "header" else proof_with(key, payload=doc)
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             headers={**rs.basic, "DPoP": proof})
    assert resp.status == 400 and await error_of(resp) == "invalid_dpop_proof", doc[:60]


@pytest.mark.parametrize("where", ["header", "payload"])
async def test_a_1000_deep_dpop_proof_is_invalid_dpop_proof(client: TestClient, rs: Registered, where: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    key = DPoPKey()
    for doc in filter(fits_a_header, (nested(1000), nested(700, "object", wrapped=True), *ODD.values())):
        proof = proof_with(key, header=doc) if where == "header" else proof_with(key, payload=doc)
        resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                 headers={**rs.basic, "DPoP": proof})
        assert resp.status == 400 and await error_of(resp) == "invalid_dpop_proof", doc[:60]
    no_traceback(caplog)


# ---- registration bodies: POST /oauth2/register and PUT /oauth2/register/{id} ----

@pytest.fixture
async def server(make_client: Any, settings: Any) -> TestClient:
    return await make_client(settings, registration="on")


async def bearer_of_initial_token(server: TestClient, uses: int = 1000) -> dict[str, str]:
    minted = await admin.mint_initial_token(provider_of(server), 3600, uses)
    return {"Authorization": "Bearer " + minted["initial_access_token"]}


async def registered(server: TestClient) -> tuple[str, dict[str, str]]:
    resp = await server.post(REGISTER, json=WEB, headers=await bearer_of_initial_token(server, 1))
    body = await resp.json()
    assert resp.status == 201, body
    path = body["registration_client_uri"].removeprefix(provider_of(server).settings.issuer)
    return path, {"Authorization": "Bearer " + body["registration_access_token"]}


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_1000_deep_registration_body_is_invalid_client_metadata(
        server: TestClient, method: str, caplog: pytest.LogCaptureFixture) -> None:
    path, auth = (REGISTER, await bearer_of_initial_token(server)) if method == "POST" else await registered(server)
    for doc in (nested(1000), nested(1000, "mixed", wrapped=True), nested(MAX_DEPTH + 1)):
        resp = await server.request(method, path, data=doc, headers={**auth, "Content-Type": "application/json"})
        assert resp.status == 400 and await error_of(resp) == "invalid_client_metadata"
        assert "deeper than" in (await resp.json())["error_description"]
    no_traceback(caplog)


@FUZZ
@given(doc=hostile | st.just(b'{"redirect_uris": ["https://rp.example.org/cb"], "x": "' + b"a" * 70_000 + b'"}'),
       method=st.sampled_from(["POST", "PUT"]))
async def test_hostile_registration_bodies_are_invalid_client_metadata(server: TestClient, doc: bytes,
                                                                       method: str) -> None:
    path, auth = (REGISTER, await bearer_of_initial_token(server)) if method == "POST" else await registered(server)
    resp = await server.request(method, path, data=doc, headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400 and await error_of(resp) == "invalid_client_metadata", (resp.status, doc[:60])


# ---- tokens the server reads: introspection, revocation, userinfo, logout hints ----

@FUZZ
@given(doc=token_sized, where=st.sampled_from(["header", "payload"]))
async def test_hostile_tokens_read_by_the_server_are_refused(client: TestClient, rs: Registered, doc: bytes,
                                                             where: str) -> None:
    token = in_header_or_payload(doc, where)
    resp = await client.post("/oauth2/introspect", data={"token": token}, headers=rs.basic)
    assert resp.status == 200 and await resp.json() == {"active": False}
    resp = await client.post("/oauth2/revoke", data={"token": token}, headers=rs.basic)
    assert resp.status == 200
    resp = await client.get("/oauth2/userinfo", headers={"Authorization": "Bearer " + token})
    assert resp.status == 401 and await error_of(resp) == "invalid_token"
    resp = await client.get("/oauth2/logout", params={"id_token_hint": token}, allow_redirects=False)
    assert resp.status == 400


async def test_a_deep_header_within_joserfcs_header_limit_is_refused_by_the_server(
        client: TestClient, rs: Registered, caplog: pytest.LogCaptureFixture) -> None:
    """joserfc reads headers of up to 512 bytes with an unbounded json.loads: 250 levels fit."""
    token = compact(nested(250), b"{}")
    for path in ("/oauth2/introspect", "/oauth2/revoke"):
        resp = await client.post(path, data={"token": token}, headers=rs.basic)
        assert resp.status == 200
    no_traceback(caplog)


# ---- tokensrv.verify: access tokens, logout tokens, DPoP proofs ----

SIGNER = Signer("RS256")


def signed(doc: bytes, where: str, typ: str = "at+jwt") -> str:
    """A token signed by the verifier's issuer key, with `doc` as its header or payload."""
    header = doc if where == "header" else json.dumps(SIGNER.header(typ=typ)).encode()
    payload = doc if where == "payload" else b"{}"
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(SIGNER.raw_signature(signing_input.encode()))}"


@FUZZ
@given(doc=token_sized, where=st.sampled_from(["header", "payload"]))
async def test_hostile_tokens_are_malformed_for_the_verifier(clock: FakeClock, doc: bytes, where: str) -> None:
    fetcher = FunctionFetcher(SIGNER)
    async with make_verifier(fetcher, clock) as verifier:
        with pytest.raises(MalformedToken):
            await verifier.verify(signed(doc, where))
        with pytest.raises(MalformedToken):
            await verifier.verify_logout_token(signed(doc, where, "logout+jwt"))
    assert fetcher.calls == [None]  # nothing a hostile token holds made the verifier fetch


@FUZZ
@given(doc=token_sized, where=st.sampled_from(["header", "payload"]))
def test_hostile_proofs_are_invalid_dpop_proof_for_the_verifier(doc: bytes, where: str) -> None:
    key = DPoPKey()
    proof = proof_with(key, header=doc) if where == "header" else proof_with(key, payload=doc)
    with pytest.raises(InvalidDPoPProof):
        check_proof(proof, method="GET", url="https://rs.example/x", now=0)


# ---- fetched JWKS: a client's jwks_uri, the verifier's discovery and JWKS ----

@pytest.mark.parametrize("name", ["100,000 deep", "1000 deep keys", *sorted(ODD)])
async def test_a_hostile_jwks_uri_answer_is_invalid_client(client: TestClient, aiohttp_server: Any, name: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    key = new_key(kid="k1")
    served = JWKSServer(public_jwks(key))
    served.body = {"100,000 deep": nested(30_000), "1000 deep keys": b'{"keys": ' + nested(1000) + b"}"}.get(
        name, ODD.get(name))
    uri = str((await aiohttp_server(served.app())).make_url("/jwks.json"))
    await admin.add_client(provider_of(client), "svc", ClientMetadata(
        grant_types=("client_credentials",), token_endpoint_auth_method="private_key_jwt", jwks_uri=uri))
    issuer = provider_of(client).settings.issuer
    assertion = sign(key, claims_for("svc", issuer + "/oauth2/token", provider_of(client).now()))
    resp = await client.post("/oauth2/token", data=assertion_form(assertion, grant_type="client_credentials"))
    assert resp.status == 401 and await error_of(resp) == "invalid_client"
    assert served.fetches == 1
    no_traceback(caplog)


class Issuer:
    """A hostile issuer over real HTTP: discovery and the JWKS, either one replaced by `doc`."""

    def __init__(self, doc: bytes, where: str) -> None:
        self.doc, self.where, self.url = doc, where, ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks.json", self.jwks)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        if self.where == "discovery":
            return web.Response(body=self.doc, content_type="application/json")
        return web.json_response({"issuer": self.url, "jwks_uri": self.url + "/jwks.json"})

    async def jwks(self, request: web.Request) -> web.Response:
        return web.Response(body=self.doc, content_type="application/json")


@pytest.mark.parametrize("where", ["discovery", "jwks"])
@pytest.mark.parametrize("name", ["100,000 deep", *sorted(ODD)])
async def test_a_hostile_issuer_document_is_a_clean_fetch_failure(aiohttp_server: Any, clock: FakeClock, where: str,
                                                                  name: str, caplog: pytest.LogCaptureFixture) -> None:
    issuer = Issuer(nested(100_000) if name == "100,000 deep" else ODD[name], where)
    server = await aiohttp_server(issuer.app())
    issuer.url = str(server.make_url("")).rstrip("/")
    async with TokenVerifier(issuer.url, "orders", clock=clock, registry=CollectorRegistry()) as verifier:
        assert not verifier.ready
        with pytest.raises(VerifierUnavailable):
            await verifier.verify(SIGNER.sign({"iss": issuer.url}))
    warned = [r.getMessage() for r in caplog.records if r.name == "tokensrv.verify"]
    assert warned and all("JWKS fetch failed: FetchError" in m for m in warned), warned
    no_traceback(caplog)


@pytest.mark.parametrize("doc", [nested(30_000), ODD["a repeated name"], ODD["NaN"]])
def test_a_hostile_jwks_file_is_one_cli_error(tmp_path: Any, doc: bytes) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(doc)
    with pytest.raises(CLIError, match="is not JSON we accept"):
        read_jwks(str(path))


# ---- the device login's reading of the server's answers ----

@pytest.mark.parametrize("name", ["100,000 deep", *sorted(ODD)])
async def test_a_hostile_answer_to_the_device_login_is_one_cli_error(aiohttp_server: Any, name: str) -> None:
    doc = nested(100_000) if name == "100,000 deep" else ODD[name]

    async def metadata(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        for start in range(0, len(doc), 4096):  # in parts, as a real network delivers it
            await answer.write(doc[start:start + 4096])
        await answer.write_eof()
        return answer
    app = web.Application()
    app.router.add_get("/.well-known/oauth-authorization-server", metadata)
    server = await aiohttp_server(app)
    with pytest.raises(CLIError, match="unexpected answer"):
        await device_flow(str(server.make_url("")).rstrip("/"), "tokensrv-cli", None)
