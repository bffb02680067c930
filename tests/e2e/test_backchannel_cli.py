"""Back-channel logout across processes: a client registered with `tokensrv client add
--backchannel-logout-uri`, a user signed in over HTTP at a live `tokensrv serve`, then
`tokensrv user revoke` run as its own process (it only queues); the server delivers the logout
token to the relying party (a real aiohttp server on loopback), which checks it with
tokensrv.verify as a relying party would. The CLI calls block, so they run in threads: the
receiver shares this test's event loop."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from prometheus_client import CollectorRegistry

from tests.helpers.backchannel import Receiver
from tests.helpers.cli import assert_one_line_error, http_post
from tests.helpers.oauth import PASSWORD
from tokensrv.verify import InvalidToken, TokenVerifier


async def cli(server: Any, *args: str, input: str | None = None, check: bool = True) -> Any:
    return await asyncio.to_thread(server.cli, *args, input=input, check=check)


async def test_user_revoke_from_the_cli_delivers_a_logout_token_the_rp_can_verify(live_server):
    receiver = await Receiver().start()
    try:
        uri = receiver.uri("/backchannel")
        added = await cli(live_server, "client", "add", "--id", "rp", "--first-party", "--grant-type", "password",
                          "--scope", "openid", "--backchannel-logout-uri", uri, "--json")
        rp_secret = json.loads(added.stdout)["client_secret"]
        shown = json.loads((await cli(live_server, "client", "show", "rp", "--json")).stdout)
        assert shown["backchannel_logout_uri"] == uri and shown["backchannel_logout_session_required"] is True
        await cli(live_server, "user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
        status, tokens = await asyncio.to_thread(
            http_post, live_server.url + "/oauth2/token",
            {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "openid"},
            "rp", rp_secret)
        assert status == 200, tokens
        await cli(live_server, "user", "revoke", "alice")
        [hit] = await receiver.wait_for("/backchannel")
        assert hit.content_type == "application/x-www-form-urlencoded" and hit.status == 200
        async with TokenVerifier(live_server.url, "orders", registry=CollectorRegistry()) as verifier:
            claims = await verifier.verify_logout_token(hit.token, audience="rp")
            for other in (tokens["access_token"], tokens["id_token"]):
                try:
                    await verifier.verify_logout_token(other, audience="rp")
                except InvalidToken:
                    continue
                raise AssertionError("a token that is not a logout token was accepted")
        assert claims["sid"] and claims["sub"] == json.loads(
            (await cli(live_server, "user", "show", "alice", "--json")).stdout)["sub"]
        assert hit.token not in live_server.log()  # never logged
        assert "backchannel_logout.delivered" in live_server.log()
    finally:
        await receiver.stop()


async def test_hostile_backchannel_logout_uris_are_one_line_errors(live_server):
    for uri in ("http://rp.example/bcl", "https://rp.example/bcl#x", "javascript:alert(1)",
                "https://user:pw@rp.example/bcl"):
        result = await cli(live_server, "client", "add", "--id", "rp", "--backchannel-logout-uri", uri,
                           check=False)
        assert_one_line_error(result, "backchannel_logout_uri")
    listed = json.loads((await cli(live_server, "client", "list", "--json")).stdout)
    assert listed == []
