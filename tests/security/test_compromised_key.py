"""A compromised signing key (`tokensrv keys revoke KID`): RFC 8725 §3.1/§3.2 (keys must be
trustworthy) and RFC 7517 §4.5 (kid). Verifiers following the revocation feed drop the key and
reject what it signed, offline, once the event arrives; introspection says inactive."""
from __future__ import annotations

import aiohttp
import pytest

from tests.helpers.live import LiveServer
from tests.helpers.poll import eventually
from tests.helpers.verify import issuer_requests
from tests.helpers.verify_live import DEADLINE, cli, header, register, verifier_of
from tokensrv.verify import InvalidToken

pytestmark = pytest.mark.e2e


async def test_a_revoked_key_is_dropped_by_verifiers_and_its_tokens_are_inactive(live_server: LiveServer) -> None:
    async with aiohttp.ClientSession() as session:
        tokensrv = await register(live_server, session)
        user_token = (await tokensrv.user_login())["access_token"]
        service_token = await tokensrv.service_token()
        kid = header(user_token)["kid"]
        async with verifier_of(live_server, redis_url=live_server.redis_url) as verifier:
            assert (await verifier.verify(user_token))["sub"]  # the key is known and trusted
            fetched = issuer_requests(verifier)
            await cli(live_server, "keys", "revoke", kid)
            mirror = verifier.mirror
            assert mirror is not None
            await mirror.wait_for(lambda: kid in mirror.state.kid)  # the feed event, pushed
            for token in (user_token, service_token):
                with pytest.raises(InvalidToken):
                    await verifier.verify(token)
            assert issuer_requests(verifier) == fetched  # decided offline, from the feed alone

            async def signed_by_another_key() -> str | None:
                status, body = await tokensrv.post("/oauth2/token", {"grant_type": "client_credentials"})
                assert status in (200, 503), body  # 503: fail closed while the server swaps keys
                token = body.get("access_token", "")
                return token if status == 200 and header(token)["kid"] != kid else None
            # the server re-reads keys/ within TOKENSRV_KEY_CHECK_INTERVAL; then the promoted key
            # signs, and verifiers trust it (it was published as `next` long before)
            fresh = await eventually(signed_by_another_key, "the server signs with the promoted key", timeout=DEADLINE)
            assert await verifier.verify(fresh)

        async def inactive() -> bool:
            status, body = await tokensrv.post("/oauth2/introspect", {"token": user_token})
            assert status == 200, body
            return bool(body == {"active": False})
        await eventually(inactive, "introspection of a token signed by the revoked key says inactive", timeout=DEADLINE)
