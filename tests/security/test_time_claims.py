"""Issue 21, item 8: tokensrv.verify accepted `iat: -1`. Time claims must be plausible: a token
issued before 1970, expiring before it was issued, or living longer than any token the issuer
hands out (`max_token_lifetime`, a day by default: the most TOKENSRV_ACCESS_TOKEN_TTL and
TOKENSRV_ID_TOKEN_TTL allow) is not the issuer's, whatever key signed it. Access tokens and
back-channel logout tokens alike; and the longest-lived tokens tokensrv can issue still verify."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.helpers.clock import FakeClock
from tests.helpers.fuzz import FUZZ
from tests.helpers.oauth import add_client, token
from tests.helpers.sso import add_app, add_user, tokens_for
from tests.helpers.verify import AUDIENCE, ISSUER, FunctionFetcher, Signer, claims_for, make_verifier, start_issuer
from tests.helpers.verify import verifier_for as http_verifier_for
from tokensrv.config import ConfigError, Settings, load_settings
from tokensrv.verify import ExpiredToken, InvalidClaims, NotYetValid, TokenVerifier
from tokensrv.verify.claims import DEFAULT_MAX_TOKEN_LIFETIME, check_times
from tokensrv.verify.jws import unverified
from tokensrv.verify.logout import EVENT

DAY = 86400
LEEWAY = 30.0
SIGNER = Signer("RS256")


@pytest.fixture
async def verifier(clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    async with make_verifier(FunctionFetcher(SIGNER), clock) as v:
        yield v


def logout_claims(now: float, **changes: Any) -> dict[str, Any]:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": int(now), "exp": int(now) + 120, "jti": f"l-{now}",
              "sid": "s-1", "events": {EVENT: {}}, **changes}
    return {k: v for k, v in claims.items() if v is not None}


async def refusal(verifier: TokenVerifier, claims: dict[str, Any], logout: bool = False) -> InvalidClaims:
    token = SIGNER.sign(claims, typ="logout+jwt" if logout else "at+jwt")
    with pytest.raises(InvalidClaims) as refused:
        if logout:
            await verifier.verify_logout_token(token)
        else:
            await verifier.verify(token)
    return refused.value


IMPLAUSIBLE = {
    "iat -1": lambda now: {"iat": -1},
    "iat -1, exp in a minute": lambda now: {"iat": -1, "exp": int(now) + 60},
    "iat a billion seconds before 1970": lambda now: {"iat": -1e9, "exp": -1e9 + 900},
    "iat 1970, valid for 56 years": lambda now: {"iat": 0},
    "a lifetime of a day and a second": lambda now: {"iat": int(now), "exp": int(now) + DAY + 1},
    "a lifetime of ten years": lambda now: {"iat": int(now) - 60, "exp": int(now) + 10 * 365 * DAY},
    "exp before iat": lambda now: {"iat": int(now), "exp": int(now) - 1},
    "iat a bool": lambda now: {"iat": True},
    "iat a string": lambda now: {"iat": str(int(now))},
}


@pytest.mark.parametrize("name", sorted(IMPLAUSIBLE))
async def test_implausible_times_are_refused_in_access_tokens(verifier: TokenVerifier, clock: FakeClock,
                                                             name: str) -> None:
    refused = await refusal(verifier, claims_for(clock(), **IMPLAUSIBLE[name](clock())))
    assert type(refused) is InvalidClaims, refused.detail  # refused for the times themselves, not as expired


@pytest.mark.parametrize("name", sorted(IMPLAUSIBLE))
async def test_implausible_times_are_refused_in_logout_tokens(verifier: TokenVerifier, clock: FakeClock,
                                                             name: str) -> None:
    refused = await refusal(verifier, logout_claims(clock(), **IMPLAUSIBLE[name](clock())), logout=True)
    assert type(refused) is InvalidClaims, refused.detail


async def test_the_bounds_themselves_are_accepted(verifier: TokenVerifier, clock: FakeClock) -> None:
    now = int(clock())
    assert (await verifier.verify(SIGNER.sign(claims_for(now, exp=now + DAY))))["exp"] == now + DAY
    assert await verifier.verify(SIGNER.sign(claims_for(now, iat=now - 10, exp=now - 10)))  # 0 s, within leeway
    assert await verifier.verify_logout_token(SIGNER.sign(logout_claims(now), typ="logout+jwt"))


async def test_max_token_lifetime_is_the_verifiers_choice(clock: FakeClock) -> None:
    now = int(clock())
    async with make_verifier(FunctionFetcher(SIGNER), clock, max_token_lifetime=900) as strict:
        assert await strict.verify(SIGNER.sign(claims_for(now, exp=now + 900)))
        refused = await refusal(strict, claims_for(now, exp=now + 901))
        assert "901" not in refused.description and "900" in refused.detail


@FUZZ
@given(iat=st.integers(-10 * DAY, 10 * DAY) | st.floats(-1e10, 1e10), lifetime=st.integers(-DAY, 3 * DAY)
       | st.floats(-1e6, 1e6))
async def test_a_token_is_accepted_exactly_when_its_times_are_plausible_and_current(
        verifier: TokenVerifier, clock: FakeClock, iat: float, lifetime: float) -> None:
    now = clock()
    iat = now + iat if abs(iat) <= 10 * DAY else iat  # near now, or anywhere (before 1970 too)
    exp = iat + lifetime
    plausible = iat >= 0 and 0 <= exp - iat <= DEFAULT_MAX_TOKEN_LIFETIME
    current = now < exp + LEEWAY and iat <= now + LEEWAY
    token = SIGNER.sign(claims_for(now, iat=iat, exp=exp))
    if plausible and current:
        assert (await verifier.verify(token))["iat"] == iat
    else:
        with pytest.raises(InvalidClaims) as refused:
            await verifier.verify(token)
        if not plausible:
            assert not isinstance(refused.value, (ExpiredToken, NotYetValid)), refused.value.detail


# ---- the default covers every token tokensrv issues ----

def test_tokensrv_refuses_token_lifetimes_its_verifier_would_refuse() -> None:
    assert DEFAULT_MAX_TOKEN_LIFETIME == DAY
    for name in ("TOKENSRV_ACCESS_TOKEN_TTL", "TOKENSRV_ID_TOKEN_TTL"):
        assert getattr(load_settings({name: str(DAY)}), name.removeprefix("TOKENSRV_").lower()) == DAY
        with pytest.raises(ConfigError, match=f"{name} must be at most 86400 seconds"):
            load_settings({name: str(DAY + 1)})


@pytest.mark.integration
async def test_the_longest_lived_tokens_tokensrv_issues_verify(aiohttp_client: Any, redis: Redis, clock: FakeClock,
                                                               settings: Settings) -> None:
    longest = dataclasses.replace(settings, access_token_ttl=DAY, id_token_ttl=DAY)
    issuer = await start_issuer(aiohttp_client, clock, longest)
    svc = await add_client(issuer, "svc", audience=AUDIENCE)
    status, issued, _ = await token(issuer, svc, grant_type="client_credentials")
    assert status == 200 and issued["expires_in"] == DAY
    app = await add_app(issuer, "rp")
    await add_user(issuer)
    id_token = (await tokens_for(issuer, app, scope="openid"))["id_token"]
    id_claims = unverified(id_token, 8192)[1]
    assert id_claims["exp"] - id_claims["iat"] == DAY
    check_times(id_claims, clock(), LEEWAY)  # the checks an ID token's times would meet: they pass
    async with http_verifier_for(issuer, clock) as verifier:
        claims = await verifier.verify(issued["access_token"])
        assert claims["exp"] - claims["iat"] == DAY
