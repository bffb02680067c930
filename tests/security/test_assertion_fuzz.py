"""Property-based fuzzing of private_key_jwt assertions and PAR requests: whatever a signed
assertion's claims and header hold, and whatever a pushed request carries, the answer is an RFC
6749 error or a success by every rule, never a 500 or a leak."""
from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.app import provider_of
from tests.helpers.assertion import assertion_form, b64url, new_key, public_jwks
from tests.helpers.fuzz import FUZZ, Known, check_answer, json_values, params
from tests.helpers.sso import add_app
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

pytestmark = pytest.mark.integration

KEY = new_key(kid="k1")
claims = st.fixed_dictionaries({}, optional={name: json_values for name in
                                             ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")})
headers = st.dictionaries(st.sampled_from(["kid", "typ", "crit", "jku", "jwk", "x5u", "b64", "cty"]),
                          json_values, max_size=3)


def raw_rs256(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A genuine RS256 signature over whatever header and claims (joserfc would refuse to sign
    some of them, and the server must cope with them all)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = KEY.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture
async def signed(client: TestClient) -> Known:
    await admin.add_client(provider_of(client), "svc", ClientMetadata(
        grant_types=("client_credentials",), token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(KEY)))
    await add_app(client, "web")
    return Known((), None)  # type: ignore[arg-type]


@FUZZ
@given(changes=claims, header=headers, base=st.booleans())
async def test_signed_assertions(client: TestClient, signed: Known, changes: dict[str, Any],
                                 header: dict[str, Any], base: bool) -> None:
    now = provider_of(client).now()
    body = {"iss": "svc", "sub": "svc", "aud": provider_of(client).settings.issuer, "exp": now + 60,
            "jti": str(now)} if base else {}
    assertion = raw_rs256({"alg": "RS256", "kid": "k1", **header}, {**body, **changes})
    resp = await client.post("/oauth2/token", data=assertion_form(assertion, grant_type="client_credentials"))
    await check_answer(resp, repr(changes) + repr(header), signed)
    assert resp.status in (200, 400, 401)


@FUZZ
@given(data=params)
async def test_pushed_requests(client: TestClient, signed: Known, data: dict[str, str]) -> None:
    resp = await client.post("/oauth2/par", data={"client_id": "web", **data})
    await check_answer(resp, repr(data), signed)
    assert resp.status in (201, 400, 401, 413)
