"""`tokensrv apply -f FILE` against a real server and store: apply, change the file, apply, prune; a
second apply writes nothing; --dry-run changes nothing; secret_env; a user created without a password
cannot sign in with one; a running server uses what apply changed at once; apply and a `client update`
at the same time lose nothing (each writes its own fields on the record as it is); errors name the
file's line, all of them, and nothing is written."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from redis import Redis

from tests.helpers.app import provider_of
from tests.helpers.cli import cli_json
from tests.helpers.http import add_client, post_form
from tests.helpers.live import wait_ready
from tests.helpers.ports import free_port
from tokensrv.admin import operations as admin
from tokensrv.admin.claim_rules import get_claim_rules
from tokensrv.admin.declared import read_declared
from tokensrv.admin.declared_apply import apply_plan
from tokensrv.admin.declared_plan import make_plan
from tokensrv.cli.commands import admin_provider
from tokensrv.config import load_settings
from tokensrv.oauth.clients.fields import ClientMetadata, MetadataChange
from tokensrv.oauth.clients.metadata import new_client
from tokensrv.store import keyspace

EXAMPLE = Path(__file__).parents[2] / "examples" / "tokensrv.yaml"
WEB = """version: 1
clients:
  - client_id: web
    client_name: Web
    redirect_uris: [https://app.example.org/cb, https://app.example.org/cb2]
    scope: openid profile
  - client_id: svc
    grant_types: [client_credentials]
    scope: read write
  - client_id: pwd
    first_party: true
    grant_types: [password]
    scope: openid
users:
  - username: alice
    email: alice@example.org
    roles: [admin, viewer]
    attributes: {department: engineering}
  - username: bob
    roles: [viewer]
"""


def apply(server, path: Path, *flags: str, check: bool = True, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "tokensrv", "apply", "-f", str(path), *flags],
                            env={**server.env, **(env or {})}, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result


def store_state(server) -> dict[bytes, bytes]:
    """Every key of the store and its serialized value, but for counters and locks (no answer promises
    them) and the back-channel logout queue (the running server's consumer reads it all the time)."""
    redis = Redis.from_url(server.redis_url)
    skipped = tuple(p.encode() for p in (*keyspace.UNPROMISED_PREFIXES, keyspace.LOGOUT_QUEUE,
                                         keyspace.LOGOUT_RETRIES))
    return {k: redis.dump(k) for k in sorted(redis.keys("tokensrv:*")) if not k.startswith(skipped)}


def audit_events(stderr: str) -> list[str]:
    return [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{") and "admin." in line]


def test_apply_change_apply_prune_round_trip(live_server, tmp_path):
    server = live_server
    add_client(server, "by-hand")  # made with the CLI: apply never prunes it
    file = tmp_path / "tokensrv.yaml"
    file.write_text(WEB)
    first = apply(server, file, "--json")
    plan = json.loads(first.stdout)
    assert plan["summary"] == {"create": 5, "update": 0, "remove": 0, "unchanged": 0, "kept": 0}
    assert set(plan["secrets"]) == {"web", "svc", "pwd"}  # generated, shown once: here only
    assert not any(secret in first.stderr for secret in plan["secrets"].values())
    assert audit_events(first.stderr).count("admin.client_added") == 3
    web = cli_json(server, "client", "show", "web")
    assert web["redirect_uris"] == ["https://app.example.org/cb", "https://app.example.org/cb2"]
    assert cli_json(server, "user", "show", "alice")["roles"] == ["admin", "viewer"]
    sub = cli_json(server, "user", "show", "alice")["sub"]

    file.write_text(WEB.replace(", https://app.example.org/cb2]", "]").replace("roles: [admin, viewer]",
                    "roles: [viewer]").split("  - username: bob")[0].replace("scope: read write", "scope: read"))
    second = apply(server, file)
    assert "client web: update" in second.stdout and "redirect_uris: " in second.stdout
    assert '["https://app.example.org/cb", "https://app.example.org/cb2"] -> ["https://app.example.org/cb"]' \
        in second.stdout
    assert "user bob: not in the file (kept; --prune removes)" in second.stdout
    assert "by-hand" not in second.stdout
    alice = cli_json(server, "user", "show", "alice")
    assert alice["roles"] == ["viewer"] and alice["sub"] == sub  # the sub never changes
    assert cli_json(server, "client", "show", "svc")["scopes"] == ["read"]
    assert cli_json(server, "user", "show", "bob")["username"] == "bob"

    file.write_text(file.read_text().split("  - client_id: pwd")[0] + "users: []\n")
    pruned = apply(server, file, "--prune")
    assert "client pwd: remove" in pruned.stdout and "user alice: remove" in pruned.stdout
    assert "user bob: remove" in pruned.stdout
    assert {c["client_id"] for c in cli_json(server, "client", "list")} == {"web", "svc", "by-hand"}
    assert cli_json(server, "user", "list") == []
    assert {"admin.client_removed", "admin.user_removed"} <= set(audit_events(pruned.stderr))


def test_a_second_apply_writes_nothing_and_a_dry_run_changes_nothing(live_server, tmp_path):
    server = live_server
    file = tmp_path / "tokensrv.yaml"
    file.write_text(WEB)
    before = store_state(server)
    dry = apply(server, file, "--dry-run")
    assert "client web: create" in dry.stdout and "Dry run: nothing was changed." in dry.stdout
    assert store_state(server) == before and audit_events(dry.stderr) == []
    apply(server, file)
    after_first = store_state(server)
    again = apply(server, file)
    assert "Nothing to change." in again.stdout and "Plan: 0 to create, 0 to update, 0 to remove, 5 unchanged" \
        in again.stdout
    assert audit_events(again.stderr) == [] and store_state(server) == after_first
    assert json.loads(apply(server, file, "--json").stdout)["applied"] is False  # nothing was to be done


def test_the_example_file_applies(live_server):
    server = live_server
    result = apply(server, EXAMPLE, "--json")
    assert json.loads(result.stdout)["summary"]["create"] == 6  # three clients, two users, the claim rules
    assert {c["client_id"] for c in cli_json(server, "client", "list")} == {"web-app", "orders-service", "spa"}
    assert "Nothing to change." in apply(server, EXAMPLE).stdout


async def test_the_claims_section_is_the_claim_rules_every_instance_follows(client):
    p = provider_of(client)
    declared = read_declared(EXAMPLE.read_bytes())
    plan = await make_plan(p, declared, False)
    assert [(s.kind, s.action) for s in plan.steps if s.kind == "claims"] == [("claims", "create")]
    assert (await apply_plan(p, plan)).failure is None
    stored = await get_claim_rules(p)
    assert stored is not None and stored["document"] == declared.claims
    again = await make_plan(p, declared, False)
    assert not again.changes and [s.action for s in again.steps if s.kind == "claims"] == ["unchanged"]
    changed = read_declared(EXAMPLE.read_bytes().replace(b"department: {attribute: department}",
                                                         b"team: {attribute: department}"))
    assert (await apply_plan(p, await make_plan(p, changed, False))).failure is None
    stored = await get_claim_rules(p)
    assert stored is not None and stored["document"]["scopes"] == {"orders.read": {"team": {"attribute": "department"}}}


def test_secret_env_gives_a_new_client_its_secret_and_must_be_set(live_server, tmp_path):
    server = live_server
    file = tmp_path / "svc.yaml"
    file.write_text("version: 1\nclients:\n  - client_id: svc\n    grant_types: [client_credentials]\n"
                    "    secret_env: SVC_SECRET\n")
    missing = apply(server, file, check=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == f"tokensrv: {file}:5:17: clients[0].secret_env: the environment variable " \
        "SVC_SECRET is not set"
    assert cli_json(server, "client", "list") == []
    secret = "s" * 40
    result = apply(server, file, "--json", env={"SVC_SECRET": secret})
    assert json.loads(result.stdout)["secrets"] == {} and secret not in result.stdout + result.stderr
    form = {"grant_type": "client_credentials"}
    assert post_form(server.url + "/oauth2/token", form, "svc", secret)[0] == 200
    assert "Nothing to change." in apply(server, file, env={"SVC_SECRET": "t" * 40}).stdout  # never changed


def test_a_user_created_by_apply_has_no_password_until_one_is_set(live_server, tmp_path):
    server = live_server
    file = tmp_path / "tokensrv.yaml"
    file.write_text(WEB)
    secrets = json.loads(apply(server, file, "--json").stdout)["secrets"]
    form = {"grant_type": "password", "username": "alice", "password": "", "scope": "openid"}
    for password in ("", "anything", "hunter2 hunter2"):
        status, body = post_form(server.url + "/oauth2/token", {**form, "password": password}, "pwd", secrets["pwd"])
        assert status == 400 and body["error"] in ("invalid_grant", "invalid_request"), body
    server.cli("user", "passwd", "alice", "--password-stdin", input="correct horse battery\n")
    status, _ = post_form(server.url + "/oauth2/token", {**form, "password": "correct horse battery"}, "pwd",
                          secrets["pwd"])
    assert status == 200
    assert "Nothing to change." in apply(server, file).stdout  # the password is not the file's


def test_a_running_server_uses_what_apply_changed_at_once(live_server, tmp_path):
    server = live_server
    file = tmp_path / "tokensrv.yaml"
    file.write_text(WEB)
    secret = json.loads(apply(server, file, "--json").stdout)["secrets"]["svc"]
    form = {"grant_type": "client_credentials", "scope": "admin"}
    assert post_form(server.url + "/oauth2/token", form, "svc", secret)[0] == 400  # cached: no admin scope
    file.write_text(WEB.replace("scope: read write", "scope: read write admin"))
    apply(server, file)
    status, issued = post_form(server.url + "/oauth2/token", form, "svc", secret)
    assert status == 200 and issued["scope"] == "admin", issued


async def test_an_update_made_between_the_plan_and_the_writes_is_kept(client):
    # apply writes only the fields its plan changes, each on the record as it is then (the WATCH
    # loops of update_client and update_user): a `client update` or `user update` of another field
    # made meanwhile stays
    p = provider_of(client)
    await apply_plan(p, await make_plan(p, read_declared(WEB.encode()), False))
    changed = WEB.replace("client_name: Web", "client_name: Web 2").replace("roles: [viewer]", "roles: [ops]")
    plan = await make_plan(p, read_declared(changed.encode()), False)
    await admin.update_client(p, "web", MetadataChange({"require_mfa": True}))
    await admin.update_user(p, "bob", admin.UserChange(email="bob@example.org"))
    outcome = await apply_plan(p, plan)
    assert outcome.failure is None and [s.name for s in outcome.done] == ["web", "bob"]
    web = await p.store.clients.get_client("web")
    assert web is not None and web.client_name == "Web 2" and web.require_mfa  # both changes
    bob = await p.store.users.find_user("bob")
    assert bob is not None and bob.roles == ("ops",) and bob.email == "bob@example.org"


def test_a_broken_file_is_every_error_at_its_line_and_nothing_is_written(live_server, tmp_path):
    server = live_server
    file = tmp_path / "broken.yaml"
    file.write_text(WEB.replace("  - client_id: pwd", "  - client_id: web").replace(
        "    roles: [viewer]\n", "    roles: viewer\n    password: hunter2\n").replace(
        "https://app.example.org/cb2", "http://app.example.org/cb2"))
    result = apply(server, file, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"tokensrv: {file}:20:12: users[1].roles: \"viewer\" is not of type \"array\"",
        f"tokensrv: {file}:21:5: users[1].password: passwords are never in the file: an operator "
        "sets one with `tokensrv user passwd USERNAME`"]
    file.write_text(file.read_text().replace("    roles: viewer\n    password: hunter2\n", ""))
    result = apply(server, file, check=False)
    assert result.stderr.splitlines() == [
        f"tokensrv: {file}:5:49: clients[0].redirect_uris[1]: redirect URI 'http://app.example.org/cb2' must use "
        "https (http only for loopback)",
        f"tokensrv: {file}:10:16: clients[2].client_id: client_id 'web' is declared twice (first at line 3)"]
    assert cli_json(server, "client", "list") == [] and cli_json(server, "user", "list") == []


def serve_apply(tmp_path: Path, file: Path, port: int, **extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = {**os.environ, "TOKENSRV_PORT": str(port), "TOKENSRV_LOG_FORMAT": "text", **extra}
    env.pop("TOKENSRV_REDIS_URL", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tokensrv", "serve", "--embedded-store", ".tokensrv",
                                    "--apply", str(file)], cwd=tmp_path, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    return process, log_path


def test_serve_apply_seeds_the_embedded_store_before_listening_and_prints_no_secret(tmp_path):
    # what `make run APPLY=examples/tokensrv.yaml` runs, the secrets from the environment
    port = free_port()
    file = tmp_path / "tokensrv.yaml"
    file.write_text(EXAMPLE.read_text().replace("# secret_env: ORDERS_SERVICE_SECRET", "secret_env: ORDERS_SECRET")
                    .replace("    first_party: true\n", "    first_party: true\n    secret_env: WEB_SECRET\n"))
    secrets = {"ORDERS_SECRET": "orders-" + "s" * 32, "WEB_SECRET": "web-" + "w" * 32}
    process, log_path = serve_apply(tmp_path, file, port, **secrets)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log_path)
        listed = subprocess.run([sys.executable, "-m", "tokensrv", "client", "list", "--json"], cwd=tmp_path,
                                env={**os.environ, "TOKENSRV_REDIS_URL": ""}, capture_output=True, text=True,
                                timeout=60)
        assert {c["client_id"] for c in json.loads(listed.stdout)} == {"web-app", "orders-service", "spa"}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    output = log_path.read_text()
    assert "client web-app: create" in output and "New client secrets" not in output
    assert all(secret not in output for secret in secrets.values())
    assert output.index("Applied") < output.index(f"127.0.0.1:{port}")  # before it listened


def test_serve_apply_creates_clients_without_showing_generated_secrets(tmp_path):
    # `make run APPLY=examples/tokensrv.yaml`: web-app and orders-service have no secret_env
    port = free_port()
    process, log_path = serve_apply(tmp_path, EXAMPLE, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log_path)
        env = {**os.environ, "TOKENSRV_REDIS_URL": ""}
        rotated = subprocess.run([sys.executable, "-m", "tokensrv", "client", "rotate-secret", "web-app", "--json"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        secret = json.loads(rotated.stdout)["client_secret"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    output = log_path.read_text()
    assert "client web-app: create" in output and "New client secrets" not in output
    assert "secrets not shown" in output and "rotate-secret" in output
    assert secret not in output and '"secrets": {"' not in output


async def test_a_store_failing_midway_is_reported_and_a_second_run_completes(redis, redis_url, tmp_path):
    # a real store refusing some writes: an ACL user that may write clients and apply's own keys but
    # no user record, so the run fails at its first user, after its clients
    await redis.execute_command("ACL", "SETUSER", "apply-test", "reset", "on", ">pw", "%R~*",
                                "%RW~tokensrv:client*", "%RW~tokensrv:managed:*", "&*", "+@all")
    scheme, _, rest = redis_url.partition("://")
    restricted = f"{scheme}://apply-test:pw@{rest}"
    declared = read_declared(WEB.encode())
    try:
        async with admin_provider(load_settings({}, redis_url=restricted, keys_dir=str(tmp_path))) as p:
            plan = await make_plan(p, declared, False)
            outcome = await apply_plan(p, plan)
    finally:
        await redis.execute_command("ACL", "DELUSER", "apply-test")
    assert outcome.failure is not None and "store failed" in outcome.failure and "user alice" in outcome.failure
    assert [s.name for s in outcome.done] == ["web", "svc", "pwd"]
    assert [s.name for s in outcome.not_done] == ["alice", "bob"]
    async with admin_provider(load_settings({}, redis_url=redis_url, keys_dir=str(tmp_path))) as p:
        again = await make_plan(p, declared, False)
        assert [(s.name, s.action) for s in again.steps if s.changes] == [("alice", "create"), ("bob", "create")]
        assert (await apply_plan(p, again)).failure is None
        assert not (await make_plan(p, declared, False)).changes


async def test_prune_removes_what_apply_adopted_never_a_registered_client(client):
    p = provider_of(client)
    await admin.add_client(p, "web", ClientMetadata(redirect_uris=("https://app.example.org/cb",)))  # by hand
    registered, _ = new_client("self-registered", ClientMetadata(redirect_uris=("https://r.example/cb",)))
    await p.store.clients.add_client(dataclasses.replace(registered, registration_token_digest="0" * 64))
    await p.store.managed.adopt("clients", {"self-registered": str(registered.created_at)})  # even if marked
    await apply_plan(p, await make_plan(p, read_declared(WEB.encode()), False))  # names web: adopts it
    only_svc = "version: 1\nclients:\n  - client_id: svc\n    grant_types: [client_credentials]\n"
    plan = await make_plan(p, read_declared(only_svc.encode()), True)
    assert {(s.name, s.action) for s in plan.steps if s.kind == "client"} == {
        ("svc", "update"), ("web", "remove"), ("pwd", "remove")}  # svc: its scope goes
    assert (await apply_plan(p, plan)).failure is None
    assert {c.client_id for c in await p.store.clients.list_clients()} == {"svc", "self-registered"}


async def test_prune_touches_only_the_kinds_the_file_has_a_section_for(client):
    p = provider_of(client)
    await apply_plan(p, await make_plan(p, read_declared(WEB.encode()), False))
    plan = await make_plan(p, read_declared(b"version: 1\nusers:\n  - username: bob\n    roles: [viewer]\n"), True)
    assert [(s.kind, s.name, s.action) for s in plan.steps if s.kind == "client" or s.action != "unchanged"] == [
        ("user", "alice", "remove")]  # no clients: section, so not one client is removed (nor listed)
    plan = await make_plan(p, read_declared(b"version: 1\nclients: []\n"), True)
    assert {(s.kind, s.name) for s in plan.steps} == {("client", "web"), ("client", "svc"), ("client", "pwd")}
    assert {s.action for s in plan.steps} == {"remove"}  # an explicit empty list prunes them all


def added_audits(stderr: str) -> dict[str, bool | None]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return {e["client_id"]: e.get("admin") for e in lines if e.get("event") == "admin.client_added"}


def test_a_client_added_by_the_cli_or_apply_is_audited_with_its_admin_flag(live_server, tmp_path):
    server = live_server
    made = server.cli("client", "add", "--id", "ops-cli", "--grant-type", "client_credentials", "--admin")
    assert added_audits(made.stderr) == {"ops-cli": True}
    file = tmp_path / "ops.yaml"
    file.write_text("version: 1\nclients:\n  - client_id: ops-apply\n    grant_types: [client_credentials]\n"
                    "    admin: true\n  - client_id: plain-apply\n    grant_types: [client_credentials]\n")
    assert added_audits(apply(server, file).stderr) == {"ops-apply": True, "plain-apply": False}
