"""tokensrv.verify against real `tokensrv serve` processes: key rotation while the JWKS is cached,
the rate-limited refetch, and revocations (jti, subject, session) pushed through the feed."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.live import LiveServer
from tests.helpers.poll import eventually
from tests.helpers.ports import free_port
from tests.helpers.verify import (
    Signer,
    claims_for,
    issuer_requests,
    wait_for_revocation,
)
from tests.helpers.verify_live import (
    DEADLINE,
    cli,
    header,
    payload,
    register,
    verifier_of,
)
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.verify import RevokedToken, UnknownKey


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# ---- keys ----

async def test_a_key_promoted_while_the_jwks_is_cached_verifies_and_old_tokens_too(
        start_server: Callable[..., LiveServer], session: aiohttp.ClientSession) -> None:
    """The server says max-age=600; an operator forces two rotations through (the CLI told the
    JWKS max-age is 0), so a key the verifier has never seen signs within seconds."""
    server = start_server(TOKENSRV_KEY_CHECK_INTERVAL="0.2")
    tokensrv = await register(server, session)
    async with verifier_of(server) as verifier:
        seen = set(verifier.keys.keys)
        old = await tokensrv.service_token()
        assert header(old)["kid"] in seen and issuer_requests(verifier) == 2

        async def rotated() -> str | None:
            keys = await cli(server, "keys", "rotate", TOKENSRV_JWKS_MAX_AGE="0", TOKENSRV_KEY_CHECK_INTERVAL="0.1")
            current = next(k["kid"] for k in keys if k["state"] == "current")
            return None if current in seen else current
        new_kid = await eventually(rotated, "a never-seen key signs", timeout=DEADLINE)

        async def signed_by_new_key() -> str | None:
            token = await tokensrv.service_token()
            return token if header(token)["kid"] == new_kid else None
        new = await eventually(signed_by_new_key, "the server signs with the new key", timeout=DEADLINE)

        assert (await verifier.verify(new))["client_id"] == "web"  # through the unknown-kid refetch
        assert issuer_requests(verifier) == 3  # that one JWKS fetch; max-age has not run out
        assert (await verifier.verify(old))["client_id"] == "web"  # its key is retired, still published
        assert issuer_requests(verifier) == 3


async def test_forged_kids_cost_the_issuer_one_request(live_server: LiveServer,
                                                       session: aiohttp.ClientSession) -> None:
    forger = Signer("RS256")
    async with verifier_of(live_server, refetch_interval=60) as verifier:
        claims = claims_for(iss=live_server.url)
        tokens = [forger.sign(claims, kid=f"forged-{i}") for i in range(30)]
        for _ in range(2):
            results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
            assert all(isinstance(r, UnknownKey) for r in results)
        assert issuer_requests(verifier) == 3  # discovery, the JWKS, one refetch


# ---- revocations ----

async def test_a_token_revoked_at_the_server_is_refused_offline(live_server: LiveServer,
                                                               session: aiohttp.ClientSession) -> None:
    tokensrv = await register(live_server, session)
    async with verifier_of(live_server, redis_url=live_server.redis_url) as verifier:
        token, other = await tokensrv.service_token(), await tokensrv.service_token()
        assert await verifier.verify(token)
        await tokensrv.revoke(token)
        await wait_for_revocation(verifier, "jti", payload(token)["jti"])
        with pytest.raises(RevokedToken):
            await verifier.verify(token)
        assert await verifier.verify(other)
        assert issuer_requests(verifier) == 2


async def test_user_revoke_refuses_every_earlier_token_of_the_user(live_server: LiveServer,
                                                                  session: aiohttp.ClientSession) -> None:
    tokensrv = await register(live_server, session)
    async with verifier_of(live_server, redis_url=live_server.redis_url) as verifier:
        first, second = (await tokensrv.user_login())["access_token"], (await tokensrv.user_login())["access_token"]
        user = await cli(live_server, "user", "revoke", "alice")
        await wait_for_revocation(verifier, "sub", user["sub"])
        for token in (first, second):
            with pytest.raises(RevokedToken):
                await verifier.verify(token)
        not_before = verifier.mirror.state.sub[user["sub"]][0]  # type: ignore[union-attr]

        async def later_login() -> str | None:  # a token of a later second than the not-before
            token = str((await tokensrv.user_login())["access_token"])
            return token if payload(token)["iat"] > not_before else None
        assert await verifier.verify(await eventually(later_login, "a login after the revocation", timeout=DEADLINE))


async def test_logging_out_refuses_the_sessions_tokens(live_server: LiveServer,
                                                       session: aiohttp.ClientSession) -> None:
    tokensrv = await register(live_server, session)
    async with verifier_of(live_server, redis_url=live_server.redis_url) as verifier:
        ended, kept = await tokensrv.user_login("openid orders:read"), await tokensrv.user_login()
        async with session.get(live_server.url + "/oauth2/logout",
                               params={"id_token_hint": ended["id_token"]}, allow_redirects=False) as resp:
            assert resp.status == 200, await resp.text()  # the hint proves the request: no confirmation
        await wait_for_revocation(verifier, "sid", payload(ended["access_token"])["sid"])
        with pytest.raises(RevokedToken):
            await verifier.verify(ended["access_token"])
        assert await verifier.verify(kept["access_token"])


# ---- the store restarts ----

@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "no-persistence"])
async def test_revocations_around_a_store_restart_are_all_seen(
        start_server: Callable[..., LiveServer], session: aiohttp.ClientSession, tmp_path: Path,
        persistent: bool) -> None:
    """With AOF the mirror resumes where it stopped; without, the feed is gone and it reloads,
    keeping what it knew. Either way nothing revoked before, during or after is accepted."""
    store = EmbeddedValkey(tmp_path / "valkey", port=free_port(), appendonly=persistent)
    store.start()
    try:
        server = start_server(TOKENSRV_REDIS_URL=store.url)
        tokensrv = await register(server, session)
        async with verifier_of(server, redis_url=store.url) as verifier:
            mirror = verifier.mirror
            assert mirror is not None
            before, around, after, survivor = [await tokensrv.service_token() for _ in range(4)]
            await tokensrv.revoke(before)
            await wait_for_revocation(verifier, "jti", payload(before)["jti"])
            await tokensrv.revoke(around)
            if not persistent:  # otherwise it would be lost by the server too
                await wait_for_revocation(verifier, "jti", payload(around)["jti"])
            store.stop()
            await mirror.wait_for(lambda: not mirror.connected)
            assert not verifier.ready
            assert await verifier.verify(survivor)  # the default policy: the last known state
            store.start()
            if not persistent:
                tokensrv = await register(server, session)  # the store lost its clients too

            async def revoked_after_restart() -> bool:
                status, _ = await tokensrv.post("/oauth2/revoke", {"token": after})
                return status == 200  # the server's own connection comes back first
            await eventually(revoked_after_restart, "tokensrv revokes again", timeout=DEADLINE)
            for token in (around, after):
                await wait_for_revocation(verifier, "jti", payload(token)["jti"])
            await mirror.wait_for(lambda: mirror.connected)
            for token in (before, around, after):
                with pytest.raises(RevokedToken):
                    await verifier.verify(token)
            assert await verifier.verify(survivor)
            assert verifier.ready
            resyncs = verifier.metrics.mirror_resyncs._value.get()
            assert resyncs == (1 if persistent else 2)
    finally:
        store.stop()
