"""`make cluster-smoke`: the cluster end to end. A token from instance 1, a refresh at instance 2,
a forced key rotation that no verification notices, a revocation at instance 3 that the example
service enforces within 50 ms, on the store the cluster runs on. Starts the cluster if it is not
running (on `store`, default single; and then stops it)."""
from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
import time
from typing import Any

import aiohttp

from examples import cluster

PROPAGATION_LIMIT_MS = 50.0
INSTANCES = [f"http://127.0.0.1:{port}" for port in cluster.TOKENSRV_PORTS]
ORDERS = f"http://127.0.0.1:{cluster.ORDERS_PORT}"
PASSWORD = "smoke test password"


class SmokeFailure(Exception):
    pass


def check(condition: bool, failure: str) -> None:
    if not condition:
        raise SmokeFailure(failure)


def step(text: str) -> None:
    print(f"  ok  {text}", flush=True)


def cli(store: str, *args: str, input: str | None = None) -> Any:
    result = subprocess.run([sys.executable, "-m", "tokensrv", *args, "--json"], env=cluster.tokensrv_env(store),
                            input=input, capture_output=True, text=True, timeout=60, check=False)
    check(result.returncode == 0, f"tokensrv {' '.join(args)}: {result.stderr.strip()}")
    return json.loads(result.stdout)


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


class Smoke:
    def __init__(self, session: aiohttp.ClientSession, store: str, client_id: str, secret: str,
                 username: str) -> None:
        self.session, self.store, self.username = session, store, username
        self.auth = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}

    async def oauth(self, instance: int, path: str, **form: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(INSTANCES[instance - 1] + path, data=form, headers=self.auth) as resp:
            body = await resp.json() if resp.content_type == "application/json" else {}
            return resp.status, body

    async def tokens(self, instance: int, **form: str) -> dict[str, Any]:
        status, body = await self.oauth(instance, "/oauth2/token", **form)
        check(status == 200, f"token request at instance {instance}: {status} {body}")
        return body

    async def orders(self, token: str, method: str = "GET") -> int:
        kwargs: dict[str, Any] = {"json": {"item": "coffee", "quantity": 1}} if method == "POST" else {}
        async with self.session.request(method, ORDERS + "/orders", headers={"Authorization": f"Bearer {token}"},
                                        **kwargs) as resp:
            return resp.status


async def run(smoke: Smoke, service: dict[str, str]) -> None:
    await every_instance_serves(smoke, service)
    first = await smoke.tokens(1, grant_type="password", username=smoke.username, password=PASSWORD,
                               scope="orders:read orders:write")
    check(await smoke.orders(first["access_token"]) == 200, "the example refused instance 1's token")
    check(await smoke.orders(first["access_token"], "POST") == 201, "the example refused an order")
    step("password grant at instance 1; the example accepts the token (GET and POST /orders)")
    latest = await smoke.tokens(2, grant_type="refresh_token", refresh_token=first["refresh_token"])
    check(await smoke.orders(latest["access_token"]) == 200, "the example refused instance 2's token")
    step("refresh at instance 2; the example accepts the new token")
    latest = await rotate_keys(smoke, latest)
    await revoke(smoke, latest)


async def every_instance_serves(smoke: Smoke, service: dict[str, str]) -> None:
    """Ready means able to serve: each instance that said so answers a client_credentials request
    with a token the example accepts, first time."""
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{service['client_id']}:{service['client_secret']}".encode()).decode()}
    for instance, url in enumerate(INSTANCES, 1):
        async with smoke.session.post(url + "/oauth2/token", data={"grant_type": "client_credentials"},
                                      headers=auth) as resp:
            body = await resp.json() if resp.content_type == "application/json" else {}
        check(resp.status == 200, f"client_credentials at instance {instance}, which said it was ready: "
                                  f"{resp.status} {body}")
        check(await smoke.orders(body["access_token"]) == 200, f"the example refused instance {instance}'s token")
    step(f"client_credentials at each of the {len(INSTANCES)} ready instances; the example accepts each token")


async def rotate_keys(smoke: Smoke, latest: dict[str, Any]) -> dict[str, Any]:
    """Rotate while the example verifies continuously: no request may fail."""
    before = latest["access_token"]
    old_kid, failures, verified = kid_of(before), [], 0
    stop = asyncio.Event()

    async def hammer() -> None:
        nonlocal verified
        while not stop.is_set():
            for token in (before, latest["access_token"]):
                status = await smoke.orders(token)
                verified += 1
                if status != 200:
                    failures.append(status)

    task = asyncio.create_task(hammer())
    await asyncio.to_thread(cli, smoke.store, "keys", "rotate")
    deadline = time.monotonic() + 30
    while kid_of(latest["access_token"]) == old_kid:  # the instances pick the new key up from keys/
        check(time.monotonic() < deadline, "no instance signs with a new key 30 s after `keys rotate`")
        latest = await smoke.tokens(3, grant_type="refresh_token", refresh_token=latest["refresh_token"])
        await asyncio.sleep(0.2)
    for _ in range(20):  # a few more rounds with both keys' tokens
        await smoke.orders(latest["access_token"])
    stop.set()
    await task
    check(not failures, f"{len(failures)} verifications failed during the rotation: {failures[:5]}")
    check(await smoke.orders(before) == 200 and await smoke.orders(latest["access_token"]) == 200,
          "a token of the old or the new key is refused")
    step(f"key rotation {old_kid[:8]}.. -> {kid_of(latest['access_token'])[:8]}..: {verified} verifications "
         "during it, none failed; old and new tokens verify")
    return latest


async def revoke(smoke: Smoke, latest: dict[str, Any]) -> None:
    token = latest["access_token"]
    check(await smoke.orders(token) == 200, "the token to revoke is refused already")
    sent = time.perf_counter()
    status, body = await smoke.oauth(3, "/oauth2/revoke", token=token)
    committed = time.perf_counter()
    check(status == 200, f"revocation at instance 3: {status} {body}")
    while await smoke.orders(token) != 401:
        check(time.perf_counter() - committed < 5, "the example still accepts the revoked token after 5 s")
    refused = time.perf_counter()
    propagation = (refused - committed) * 1000
    print(f"  --  revocation at instance 3 answered in {(committed - sent) * 1000:.1f} ms; the example "
          f"refused the token {propagation:.1f} ms later ({(refused - sent) * 1000:.1f} ms end to end)")
    check(propagation <= PROPAGATION_LIMIT_MS,
          f"revocation took {propagation:.1f} ms to reach the example (limit {PROPAGATION_LIMIT_MS:.0f} ms)")
    step(f"revocation at instance 3 reached the example in {propagation:.1f} ms (limit "
         f"{PROPAGATION_LIMIT_MS:.0f} ms)")
    status, body = await smoke.oauth(3, "/oauth2/revoke", token=latest["refresh_token"])
    check(status == 200, f"refresh token revocation: {status} {body}")
    status, body = await smoke.oauth(1, "/oauth2/token", grant_type="refresh_token",
                                     refresh_token=latest["refresh_token"])
    check(status == 400 and body.get("error") == "invalid_grant", f"a revoked refresh token worked: {body}")
    step("the revoked refresh token is refused at instance 1")


def smoke(store: str | None = None) -> int:
    """On the cluster that is up (an error if `store` names another), else on one started on `store`."""
    running = cluster.running()
    if running and store not in (None, running):
        print(f"cluster-smoke: FAILED: the cluster is up on STORE={running}, not {store}: run `make "
              "cluster-down` first", file=sys.stderr, flush=True)
        return 1
    store, started = running or store or "single", False
    try:
        if not running:
            print(f"cluster-smoke: starting the cluster (STORE={store})", flush=True)
        cluster.up(store)  # or wait until the one that is up is ready
        started = not running
        print(f"cluster-smoke: STORE={store} ({cluster.store_url(store)})", flush=True)
        suffix = secrets.token_hex(4)
        client = cli(store, "client", "add", "--id", f"smoke-{suffix}", "--first-party", "--audience", "orders",
                     "--grant-type", "password", "--grant-type", "refresh_token",
                     "--scope", "orders:read", "--scope", "orders:write")
        service = cli(store, "client", "add", "--id", f"smoke-svc-{suffix}", "--audience", "orders",
                      "--grant-type", "client_credentials", "--scope", "orders:read")
        cli(store, "user", "add", f"smoke-{suffix}", "--password-stdin", input=PASSWORD + "\n")
        step(f"clients smoke-{suffix}, smoke-svc-{suffix} and user smoke-{suffix} created with the CLI")

        async def main() -> None:
            async with aiohttp.ClientSession() as session:
                smoke = Smoke(session, store, client["client_id"], client["client_secret"], f"smoke-{suffix}")
                await run(smoke, service)
        asyncio.run(main())
        print("cluster-smoke: passed", flush=True)
        return 0
    except (SmokeFailure, cluster.ClusterError) as exc:
        print(f"cluster-smoke: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if started:
            cluster.down()
