"""Property-based fuzzing of every endpoint's parameters and of tokens fed to the verifier.

Whatever arrives, the answer is never a 500 and never shows a traceback, store text, a file path
or a secret (RFC 6749 §5.2: errors are a fixed code and description; OWASP ASVS V7.4)."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import oauth as oauth_helpers
from tests.helpers.fuzz import FUZZ, Known, ascii_text, check_answer, json_values, params, text
from tests.helpers.sso import add_app, add_user, pkce
from tests.helpers.verify import FunctionFetcher, Signer, claims_for, make_verifier
from tokensrv.verify import InvalidToken

pytestmark = pytest.mark.integration


header_values = st.one_of(
    ascii_text, st.sampled_from(["Bearer ", "Basic ", "Basic Og==", "Bearer a.b.c", "Basic !!!", "bearer x",
                                 "Basic " + "A" * 300, "Basic dmljdGltOg==", "Bearer eyJ.eyJ.", "Negotiate x"]),
    ascii_text.map(lambda t: "Bearer " + t), ascii_text.map(lambda t: "Basic " + t))


@pytest.fixture
async def known(client: TestClient) -> Known:
    svc = await oauth_helpers.add_client(client, "svc")
    await add_app(client, "web")
    await oauth_helpers.add_app(client, "first")
    await add_user(client)
    return Known(tuple(s for s in (svc.secret,) if s), svc)


@FUZZ
@given(data=params, auth=st.none() | header_values)
async def test_token_endpoint(client: TestClient, known: Known, data: dict[str, str], auth: str | None) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    resp = await client.post("/oauth2/token", data=data, headers=headers)
    await check_answer(resp, repr(data) + repr(auth), known)


@FUZZ
@given(data=params, authenticated=st.booleans(), path=st.sampled_from(["/oauth2/revoke", "/oauth2/introspect"]))
async def test_revoke_and_introspect(client: TestClient, known: Known, data: dict[str, str], authenticated: bool,
                                     path: str) -> None:
    resp = await client.post(path, data=data, headers=known.svc.basic if authenticated else {})
    await check_answer(resp, repr(data), known)


@FUZZ
@given(query=params, with_pkce=st.booleans())
async def test_authorize(client: TestClient, known: Known, query: dict[str, str], with_pkce: bool) -> None:
    if with_pkce:
        query = {"client_id": "web", "response_type": "code", "code_challenge": pkce()[1],
                 "code_challenge_method": "S256", **query}
    resp = await client.get("/oauth2/authorize", params=query, allow_redirects=False)
    await check_answer(resp, repr(query), known)
    if resp.status in (302, 303):
        assert "\n" not in resp.headers["Location"] and "\r" not in resp.headers["Location"]


@FUZZ
@given(data=params, method=st.sampled_from(["GET", "POST"]), path=st.sampled_from(["/login", "/oauth2/logout"]))
async def test_login_and_logout(client: TestClient, known: Known, data: dict[str, str], method: str,
                                path: str) -> None:
    if method == "GET":
        resp = await client.get(path, params=data, allow_redirects=False)
    else:
        resp = await client.post(path, data=data, allow_redirects=False)
    await check_answer(resp, repr(data), known)


@FUZZ
@given(auth=st.lists(header_values, max_size=2), method=st.sampled_from(["GET", "POST"]), form=params)
async def test_userinfo_headers(client: TestClient, known: Known, auth: list[str], method: str,
                                form: dict[str, str]) -> None:
    headers = [("Authorization", value) for value in auth]
    if method == "GET":
        resp = await client.get("/oauth2/userinfo", headers=headers)
    else:
        resp = await client.post("/oauth2/userinfo", headers=headers, data=form)
    await check_answer(resp, repr(auth) + repr(form), known)


@FUZZ
@given(body=st.binary(max_size=300), content_type=st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=nope", "application/json", "multipart/form-data",
    "multipart/form-data; boundary=x", "text/plain", ""]),
    path=st.sampled_from(["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect", "/login", "/oauth2/logout",
                          "/oauth2/userinfo", "/oauth2/authorize"]))
async def test_raw_bodies(client: TestClient, known: Known, body: bytes, content_type: str, path: str) -> None:
    headers = {"Content-Type": content_type, **known.svc.basic} if content_type else known.svc.basic
    resp = await client.post(path, data=body, headers=headers, allow_redirects=False)
    await check_answer(resp, body.decode("latin-1"), known)


SIGNER = Signer("RS256")
claim_changes = st.dictionaries(st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "sub", "jti", "scope",
                                                 "client_id", "sid", "auth_time", "roles"]), json_values, max_size=4)
header_changes = st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jku", "jwk", "x5c", "b64"]),
                                 json_values, max_size=3)


@FUZZ
@given(claims=claim_changes, header=header_changes, raw=st.one_of(st.none(), text, st.binary(max_size=200).map(
    lambda b: b.decode("latin-1"))))
async def test_verifier_raises_only_invalid_token(claims: dict[str, Any], header: dict[str, Any],
                                                  raw: str | None) -> None:
    """RFC 8725 §3.9 and §2.8: whatever the token holds, the verifier answers with InvalidToken
    (or accepts a token that is valid by every rule), never another exception."""
    verifier = make_verifier(FunctionFetcher(SIGNER))
    await verifier.start()
    try:
        token = raw if raw is not None else SIGNER.sign(claims_for(**claims), **header)
        try:
            result = await verifier.verify(token)
        except InvalidToken:
            return
        assert raw is None  # only a token we signed can pass, and then only with the right audience
        assert result["aud"] == "orders" or "orders" in result["aud"]
    finally:
        await verifier.close()
