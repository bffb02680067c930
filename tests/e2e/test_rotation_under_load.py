"""Item 2 of issue 21: `tokensrv keys rotate` under a steady client_credentials load answered 503
"no signing key loaded" while a server re-read keys/ in the middle of a step. Here a real server
(two worker processes sharing keys/ with each other and with the CLI) answers every token request
while the keys rotate several times, and every token it issued verifies with its JWKS."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import jwt as pyjwt

from tests.helpers.http import add_client, post_form
from tests.helpers.poll import eventually_sync

ROTATIONS = 6
PUBLISH_DELAY = 3  # JWKS_MAX_AGE 2 + one keys/ check rounded up: the next key may sign this long after its creation
MAX_REQUESTS = 20_000  # a bound on the load loop should the rotations never finish


def signing_kid(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def next_key_may_sign(keys_dir: Path) -> bool:
    created = [json.loads(p.read_text())["created_at"] for p in keys_dir.glob("*.json")
               if json.loads(p.read_text())["state"] == "next"]
    return bool(created) and time.time() >= min(created) + PUBLISH_DELAY


def test_rotating_keys_under_load_answers_every_token_request(start_server):
    # a short max-age and check interval: each rotation completes within seconds
    server = start_server(TOKENSRV_WORKERS="2", TOKENSRV_JWKS_MAX_AGE="2", TOKENSRV_KEY_CHECK_INTERVAL="0.2")
    secret = add_client(server, "svc", "--grant-type", "client_credentials", "--scope", "read")
    answers: list[tuple[int, dict[str, object]]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(answers) < MAX_REQUESTS:
            answers.append(post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"},
                                     "svc", secret))

    def latest_kid() -> str:
        status, body = post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "svc", secret)
        assert status == 200, body
        return signing_kid(str(body["access_token"]))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        signers = [latest_kid()]
        for _ in range(ROTATIONS):
            # the CLI then performs the whole step itself (request, promote, create) while the
            # workers re-read the folder its request just changed: the race of the issue
            eventually_sync(lambda: next_key_may_sign(server.keys_dir), "the next key to be published long enough",
                            timeout=120)
            server.cli("keys", "rotate")
            eventually_sync(lambda: latest_kid() != signers[-1], "the next key to sign", timeout=120)
            signers.append(latest_kid())
    finally:
        stop.set()
        loader.join(timeout=60)
    assert len(set(signers)) == ROTATIONS + 1
    failed = [a for a in answers if a[0] != 200]
    assert failed == [], f"{len(failed)} of {len(answers)} token requests failed, e.g. {failed[:3]}"
    with urllib.request.urlopen(server.url + "/.well-known/jwks.json", timeout=10) as resp:
        jwks = {k["kid"]: pyjwt.PyJWK(k) for k in json.loads(resp.read())["keys"]}
    kids = {signing_kid(str(body["access_token"])) for _, body in answers}
    assert len(kids) > ROTATIONS // 2  # the load ran across rotations
    for _, body in answers:
        token = str(body["access_token"])
        pyjwt.decode(token, jwks[signing_kid(token)], algorithms=["RS256"], issuer=server.url,
                     options={"verify_aud": False})
