"""Durability: `kill -9` of the server and of Valkey (then both started again on the same AOF
directory) loses no acknowledged refresh family, SSO session or deny-list entry.

Valkey runs with AOF and `appendfsync everysec`: every acknowledged write is in the kernel before
the reply, so it survives the process dying; revocations also wait for the fsync (WAITAOF)."""
from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from redis import Redis

from tests.helpers.live import LiveServer
from tests.helpers.ports import free_port
from tests.helpers.sso import csrf_of, pkce
from tokensrv.cli.embedded import EmbeddedValkey
from tokensrv.store import keyspace

ISSUER = "http://tokensrv.test"  # fixed: the restarted server listens on another port
REDIRECT = "http://127.0.0.1:9000/cb"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[list[EmbeddedValkey]]:
    """The store of this test (a list: the test replaces it with its restarted self)."""
    running = [EmbeddedValkey(tmp_path / "valkey", port=free_port())]
    running[0].start()
    yield running
    running[-1].stop()


def kill_9(process: Any) -> None:
    process.kill()  # SIGKILL: no shutdown handler, no AOF flush on exit
    process.wait()


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def browser_sign_in(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """Authorize, log in on the form (cookies in the session's jar), redeem the code."""
    verifier, challenge = pkce()
    query = {"client_id": "web", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
             "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"}
    resp = await http.get(url + "/oauth2/authorize", params=query, allow_redirects=False)
    location = resp.headers["Location"]
    if urlsplit(location).path == "/login":
        page = await http.get(url + location)
        request_id = parse_qs(urlsplit(location).query)["request"][0]
        resp = await http.post(url + "/login", allow_redirects=False, data={
            "request": request_id, "csrf_token": csrf_of(await page.text()), "username": "alice",
            "password": PASSWORD})
        location = resp.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = await http.post(url + "/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
        "client_id": "web"})
    assert token.status == 200, await token.text()
    return dict(await token.json())


async def introspect(http: aiohttp.ClientSession, url: str, svc: dict[str, str], token: str) -> bool:
    resp = await http.post(url + "/oauth2/introspect", data={"token": token}, headers=svc)
    assert resp.status == 200, await resp.text()
    return bool((await resp.json())["active"])


async def test_kill_9_of_server_and_store_loses_nothing_acknowledged(
        start_server: Callable[..., LiveServer], own_valkey: list[EmbeddedValkey]) -> None:
    valkey = own_valkey
    """RFC 7009 §2.2 (a revocation acknowledged is in effect) and RFC 9700 §4.14.2 (refresh
    families): nothing acknowledged before a crash is lost."""
    env = {"TOKENSRV_REDIS_URL": valkey[0].url, "TOKENSRV_ISSUER": ISSUER}
    server = start_server(**env)
    server.cli("client", "add", "--id", "web", "--public", "--redirect-uri", REDIRECT,
               "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid")
    svc_secret = json.loads(server.cli("client", "add", "--id", "svc").stdout)["client_secret"]
    svc = basic("svc", svc_secret)
    server.cli("user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        kept = await browser_sign_in(http, server.url)
        revoked = await browser_sign_in(http, server.url)  # the SSO session answers at once
        for token in (revoked["access_token"], revoked["refresh_token"]):
            resp = await http.post(server.url + "/oauth2/revoke", data={"token": token, "client_id": "web"})
            assert resp.status == 200
        revoked_jti = json.loads(base64.urlsafe_b64decode(revoked["access_token"].split(".")[1] + "=="))["jti"]

        kill_9(server.process)
        kill_9(valkey[0].process)
        valkey.append(EmbeddedValkey(valkey[0].data_dir, port=valkey[0].port))
        valkey[-1].start()
        again = start_server(keys_dir=server.keys_dir, **env)

        # the refresh family survived, and rotates
        resp = await http.post(again.url + "/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": kept["refresh_token"], "client_id": "web"})
        assert resp.status == 200, await resp.text()
        assert await introspect(http, again.url, svc, kept["access_token"])
        # the revocations survived: the token stays inactive, the refresh family dead, the feed has them
        assert not await introspect(http, again.url, svc, revoked["access_token"])
        resp = await http.post(again.url + "/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": revoked["refresh_token"], "client_id": "web"})
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
        feed: list[tuple[str, dict[str, str]]] = Redis.from_url(  # type: ignore[assignment]
            valkey[-1].url, decode_responses=True).xrange(keyspace.FEED)
        assert any(fields["k"] == "jti" and fields["v"] == revoked_jti for _, fields in feed), feed
        # the SSO session survived: prompt=none gets a code, no login page
        resp = await http.get(again.url + "/oauth2/authorize", allow_redirects=False, params={
            "client_id": "web", "response_type": "code", "redirect_uri": REDIRECT, "prompt": "none",
            "code_challenge": pkce()[1], "code_challenge_method": "S256"})
        assert resp.status == 303 and "code" in parse_qs(urlsplit(resp.headers["Location"]).query)
