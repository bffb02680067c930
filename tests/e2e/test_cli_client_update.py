"""A client changed in place: `tokensrv client update ID` (round trips through the store, errors that
name the flag, concurrent updates none of which is lost, a running server using the change at once)
and `tokensrv client rotate-secret ID --overlap` (the old secret works during the overlap and is
refused after it, by the server's injected clock; a client without a previous secret costs no more)."""
from __future__ import annotations

import asyncio
import hmac
import json

from tests.helpers.app import provider_of
from tests.helpers.cli import assert_one_line_error, cli_json
from tests.helpers.http import add_client, post_form
from tests.helpers.oauth import basic
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients import metadata
from tokensrv.oauth.clients.fields import ClientMetadata, MetadataChange

APP = "https://app.example.org/cb"


def test_update_round_trips_and_keeps_the_id_and_secret(live_server):
    server = live_server
    secret = add_client(server, "web", "--redirect-uri", APP, "--scope", "read", "--name", "Web")
    result = server.cli("client", "update", "web", "--add-redirect-uri", "https://app.example.org/cb2",
                        "--remove-scope", "read", "--add-scope", "write", "--require-mfa", "--name", "Web app",
                        "--add-allowed-origin", "https://app.example.org", "--unset-logo-uri", "--json")
    updated = json.loads(result.stdout)
    audit_line = next(json.loads(line) for line in result.stderr.splitlines() if "admin.client_updated" in line)
    assert audit_line["changed"] == ["allowed_origins", "client_name", "logo_uri", "redirect_uris", "require_mfa",
                                     "scope"]
    assert "Web app" not in result.stderr  # names of fields, never their values
    shown = cli_json(server, "client", "show", "web")
    assert shown == updated and shown["client_id"] == "web"
    assert shown["redirect_uris"] == [APP, "https://app.example.org/cb2"] and shown["scopes"] == ["write"]
    assert shown["require_mfa"] is True and shown["client_name"] == "Web app"
    assert shown["allowed_origins"] == ["https://app.example.org"]
    server.cli("client", "update", "web", "--no-require-mfa", "--remove-allowed-origin", "https://app.example.org")
    shown = cli_json(server, "client", "show", "web")
    assert shown["require_mfa"] is False and shown["allowed_origins"] == []
    status, _ = post_form(server.url + "/oauth2/token", {"grant_type": "client_credentials"}, "web", secret)
    assert status == 200  # the secret did not change
    view = server.cli("client", "show", "web").stdout.splitlines()  # without --json: for a person
    assert "client id:" in view[0] and view[0].endswith(" web")
    assert any(line.startswith("created at:") and line.endswith("Z") for line in view)
    table = server.cli("client", "list").stdout.splitlines()
    assert table[0].split()[-1] == "CREATED_AT" and table[1].split()[-1].endswith("Z")  # ISO, not epoch


def test_bad_updates_name_the_flag_and_write_nothing(live_server):
    server = live_server
    add_client(server, "web", "--redirect-uri", APP)
    before = cli_json(server, "client", "show", "web")
    for args, words in (
            (("--add-redirect-uri", "http://evil.example/cb"), ("--add-redirect-uri", "https")),
            (("--remove-redirect-uri", APP), ("--add-redirect-uri",)),  # the code grant needs one
            (("--remove-scope", "nope"), ("--remove-scope", "'nope'", "no such value")),
            (("--add-grant-type", "password"), ("--first-party",)),
            (("--public",), ("--public", "--auth-method")),
            (("--public", "--auth-method", "none", "--remove-grant-type", "client_credentials"),
             ("--auth-method", "remove it and add it again")),
            (("--name", "x", "--unset-name"), ("--name", "--unset-name")),
            ((), ("nothing to change",))):
        assert_one_line_error(server.cli("client", "update", "web", *args, check=False), *words)
    assert_one_line_error(server.cli("client", "update", "nobody", "--name", "x", check=False), "no client")
    assert cli_json(server, "client", "show", "web") == before


async def test_concurrent_updates_are_none_of_them_lost(client):
    p = provider_of(client)
    await admin.add_client(p, "web", ClientMetadata(redirect_uris=(APP,)))
    uris = [f"https://app.example.org/cb{i}" for i in range(12)]
    # each update reads the record, changes it and writes it back, all at once: a plain read then
    # write would keep only some of them
    await asyncio.gather(*(admin.update_client(p, "web", MetadataChange(added={"redirect_uris": (uri,)}))
                           for uri in uris))
    stored = await p.store.clients.get_client("web")
    assert stored is not None and set(stored.redirect_uris) == {APP, *uris}


def test_a_running_server_uses_an_update_at_once(live_server):
    server = live_server
    secret = add_client(server, "svc", "--scope", "read")
    form = {"grant_type": "client_credentials", "scope": "write"}
    assert post_form(server.url + "/oauth2/token", form, "svc", secret)[0] == 400  # cached: no write scope
    server.cli("client", "update", "svc", "--add-scope", "write")
    status, issued = post_form(server.url + "/oauth2/token", form, "svc", secret)
    assert status == 200 and issued["scope"] == "write", issued  # the cache dropped the old record


def test_rotate_secret_with_no_overlap_refuses_the_old_one_at_once(live_server):
    server = live_server
    old = add_client(server, "svc")
    form = {"grant_type": "client_credentials"}
    assert post_form(server.url + "/oauth2/token", form, "svc", old)[0] == 200
    result = server.cli("client", "rotate-secret", "svc", "--overlap", "0", "--json")
    rotated = json.loads(result.stdout)
    assert rotated["previous_secret_expires_at"] is None and rotated["client_secret"] not in result.stderr
    assert '"admin.client_secret_rotated"' in result.stderr
    assert post_form(server.url + "/oauth2/token", form, "svc", old)[0] == 401
    assert post_form(server.url + "/oauth2/token", form, "svc", rotated["client_secret"])[0] == 200
    assert_one_line_error(server.cli("client", "rotate-secret", "svc", "--overlap", "31d", check=False),
                          "--overlap", "30d")
    assert_one_line_error(server.cli("client", "rotate-secret", "svc", "--overlap", "soon", check=False),
                          "--overlap")
    add_client(server, "spa", "--public", "--redirect-uri", APP)
    assert_one_line_error(server.cli("client", "rotate-secret", "spa", check=False), "has no secret")


async def token_status(client, client_id: str, secret: str) -> int:
    resp = await client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                             headers=basic(client_id, secret))
    return resp.status


async def test_the_old_secret_works_during_the_overlap_then_stops(client, clock):
    p = provider_of(client)
    old = (await admin.add_client(p, "svc", ClientMetadata()))["client_secret"]
    rotated = await admin.rotate_secret(p, "svc", 3600)
    new = rotated["client_secret"]
    assert await token_status(client, "svc", old) == 200
    assert await token_status(client, "svc", new) == 200
    shown = admin.client_view(await admin.get_client(p, "svc"))
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    assert "previous_secret_digest" not in shown and "secret_digest" not in shown
    clock.advance(3600)
    assert await token_status(client, "svc", old) == 401
    assert await token_status(client, "svc", new) == 200
    # a second rotation keeps only the secret it replaces: the first one never comes back
    newer = (await admin.rotate_secret(p, "svc", 3600))["client_secret"]
    assert await token_status(client, "svc", old) == 401
    assert await token_status(client, "svc", new) == 200 and await token_status(client, "svc", newer) == 200


async def test_a_client_without_a_previous_secret_costs_one_compare(client, monkeypatch):
    p = provider_of(client)
    secret = (await admin.add_client(p, "svc", ClientMetadata()))["client_secret"]
    compares, compare = [], hmac.compare_digest

    def counted(a, b):
        compares.append(1)
        return compare(a, b)
    monkeypatch.setattr(metadata.hmac, "compare_digest", counted)
    clock_reads = []
    await metadata.check(p.store.clients, "svc", secret, now=lambda: clock_reads.append(1) or 0)
    assert compares == [1] and clock_reads == []  # the hot path as it was: one compare, no clock
