"""Signing one access token: raw `cryptography`, joserfc's jwt.encode, tokensrv's sign()."""
from __future__ import annotations

import jwt as pyjwt
import pytest
from joserfc import jwt

from bench.micro.conftest import ALGORITHMS, access_claims, provider
from bench.sign_rate import SIGNING_INPUT, signer
from tokensrv.oauth.own_tokens import ACCESS_TOKEN_TYPE, sign


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_sign_raw(benchmark, keys, alg):
    benchmark.group = f"sign {alg}"
    benchmark(signer(keys[alg].key.private_key), SIGNING_INPUT)


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")  # EdDSA's name: RFC 9864
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_sign_joserfc(benchmark, keys, alg):
    benchmark.group = f"sign {alg}"
    key = keys[alg]
    header = {"alg": key.alg, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    # joserfc signs EdDSA only when asked by name (RFC 9864 deprecates the name)
    benchmark(jwt.encode, header, access_claims(), key.key, algorithms=[alg])


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_sign_tokensrv(benchmark, keys, alg):
    benchmark.group = f"sign {alg}"
    token = benchmark(sign, provider(keys[alg]), access_claims(), ACCESS_TOKEN_TYPE)
    public = keys[alg].key.private_key.public_key()
    claims = pyjwt.decode(token, public, algorithms=[alg], options={"verify_aud": False})  # a valid JWS
    assert claims["sub"] == "svc"
