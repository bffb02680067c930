"""The CLI's remote mode without a tokensrv: how an HTTP failure becomes one line (the error mapping),
what it refuses before any request (an http URL to another host, no client, no secret, an unreadable
key), the bodies built from the flags, and which commands have no route (exit 2). The round trips
against a real admin listener are in tests/e2e/test_cli_remote.py."""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.helpers.ports import free_port
from tokensrv.cli import commands, remote, remote_commands
from tokensrv.cli.console import CLIError
from tokensrv.cli.main import build_parser, main

TOKEN_URL = "https://id.example.org/oauth2/token"
ADMIN_URL = "https://id.example.org/admin/clients"


@pytest.mark.parametrize(("status", "answer", "url", "words"), [
    (401, {"error": "invalid_client", "error_description": "bad secret"}, TOKEN_URL,
     ("client 'ops'", "secret or key is wrong", "invalid_client")),
    (400, {"error": "invalid_scope"}, TOKEN_URL, ("not an admin client", "--admin")),
    (400, {"error": "unauthorized_client"}, TOKEN_URL, ("not an admin client",)),
    (403, {"error": "insufficient_scope"}, ADMIN_URL, ("not an admin client",)),
    (401, {"error": "invalid_token"}, ADMIN_URL, ("refused the admin token", "invalid_token")),
    (404, {"error": "not_found", "error_description": "no client 'web'"}, ADMIN_URL, ("no client 'web'",)),
    (400, {"error": "invalid_request", "error_description": "redirect_uris:\n must be https"}, ADMIN_URL,
     ("redirect_uris: must be https",)),
    (409, {"error": "conflict"}, ADMIN_URL, ("conflict (HTTP 409)",)),
    (400, {"error": "invalid_request", "error_description": "bad\x1b[2J\x07 \u202eval\rue"}, ADMIN_URL,
     ("bad [2J val ue",)),
    (401, {"error": "invalid_client\x1b]0;x\x07", "error_description": "no\x1b[31m"}, TOKEN_URL,
     ("(invalid_client ]0;x : no [31m)",)),
    (302, None, ADMIN_URL, ("redirected", "HTTP 302")),
    (502, None, ADMIN_URL, ("https://id.example.org answered HTTP 502",)),
])
def test_each_http_failure_is_one_line_saying_what_to_check(status, answer, url, words):
    line = remote.failure(status, answer, "ops", url)
    assert line.isprintable()
    for word in words:
        assert word in line, line


def test_an_answer_is_json_or_one_line_naming_the_listener():
    assert remote.answer_of(204, b"", ADMIN_URL) is None
    assert remote.answer_of(200, b'[{"kid": "a"}]', ADMIN_URL) == [{"kid": "a"}]
    for raw in (b"<html>Welcome</html>", b'{"a": 1, "a": 2}', b"[" * 1000 + b"]" * 1000):
        with pytest.raises(CLIError, match="something other than JSON: is --server the admin listener"):
            remote.answer_of(200, raw, ADMIN_URL)
    with pytest.raises(CLIError, match="more than 16 MiB"):
        remote.answer_of(200, b" " * (remote.MAX_ANSWER + 1), ADMIN_URL)


@pytest.mark.parametrize("url", ["http://admin.example.org", "ftp://127.0.0.1", "127.0.0.1:9090", "https://"])
def test_a_url_that_would_send_the_secret_in_clear_or_nowhere_is_refused(url):
    with pytest.raises(CLIError, match="--server"):
        remote.checked_url(url, "--server")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9090", "http://localhost:9090", "https://admin.example.org"])
def test_https_and_loopback_http_are_taken(url):
    assert remote.checked_url(url, "--server") == url


def remote_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["client", "list", "--server", "https://admin.example.org", *argv])


def test_the_credentials_come_from_flags_and_the_environment_never_argv(monkeypatch):
    monkeypatch.delenv("TOKENSRV_ADMIN_CLIENT_ID", raising=False)
    monkeypatch.delenv("TOKENSRV_ADMIN_CLIENT_SECRET", raising=False)
    with pytest.raises(CLIError, match="--server needs --client-id"):
        remote.credentials(remote_args(), "https://admin.example.org")
    with pytest.raises(CLIError, match="set TOKENSRV_ADMIN_CLIENT_SECRET"):
        remote.credentials(remote_args("--client-id", "ops"), "https://admin.example.org")
    monkeypatch.setenv("OPS_SECRET", "s3cret")
    monkeypatch.setenv("TOKENSRV_ADMIN_CLIENT_ID", "ops")
    creds = remote.credentials(remote_args("--client-secret-env", "OPS_SECRET"), "https://admin.example.org/")
    assert (creds.server, creds.client_id, creds.secret, creds.key) == ("https://admin.example.org", "ops",
                                                                        "s3cret", None)


def test_a_private_key_file_signs_the_assertion_the_token_endpoint_checks(tmp_path):
    key = ECKey.generate_key("P-256", parameters={"kid": "ops-1"})
    jwk = json.dumps(key.as_dict(private=True)).encode()
    for name, content in (("key.pem", key.as_pem(private=True)), ("key.json", jwk)):
        (tmp_path / name).write_bytes(content)
        signed = remote.assertion(remote.read_key(str(tmp_path / name)), "ops", TOKEN_URL)
        claims = jwt.decode(signed, key, algorithms=["ES256"]).claims
        assert (claims["iss"], claims["sub"], claims["aud"]) == ("ops", "ops", TOKEN_URL)
        assert claims["exp"] - claims["iat"] == 60 and claims["jti"]
    (tmp_path / "public.pem").write_bytes(RSAKey.generate_key(2048).as_pem(private=False))
    (tmp_path / "junk").write_bytes(b"not a key")
    for name, words in (("public.pem", "no private"), ("junk", "no private RSA"), ("absent", "cannot read")):
        with pytest.raises(CLIError, match=words):
            remote.read_key(str(tmp_path / name))


def test_a_path_part_stays_one_segment():
    assert remote.path_of("users", "ann/../b c?x") == "/admin/users/ann%2F..%2Fb%20c%3Fx"


def test_client_update_sends_whole_lists_from_the_record_as_it_is():
    args = build_parser().parse_args(["client", "update", "web", "--add-scope", "write", "--remove-scope", "read",
                                      "--add-redirect-uri", "https://a.example/2", "--unset-logo-uri", "--name", "W"])
    view = {"client_id": "web", "scopes": ["read", "openid"], "redirect_uris": ["https://a.example/1"]}
    assert remote_commands.client_patch(args, view) == {
        "scope": ["openid", "write"], "redirect_uris": ["https://a.example/1", "https://a.example/2"],
        "logo_uri": None, "client_name": "W"}
    args = build_parser().parse_args(["client", "update", "web", "--remove-scope", "nope"])
    with pytest.raises(CLIError, match="--remove-scope 'nope': client 'web' has no such value"):
        remote_commands.client_patch(args, view)


def test_user_update_sends_only_what_it_changes():
    args = build_parser().parse_args(["user", "update", "ann", "--add-role", "ops", "--remove-role", "dev",
                                      "--unset-email", "--attr", "locale=fr", "--unset-attr", "team"])
    view = {"sub": "s1", "username": "ann", "email": "a@example.org", "roles": ["dev", "qa"], "groups": ["g"],
            "attributes": {"team": "x", "given_name": "Ann"}}
    assert remote_commands.user_patch(args, view) == {
        "email": None, "roles": ["qa", "ops"], "attributes": {"given_name": "Ann", "locale": "fr"}}


def test_every_route_is_an_admin_command():
    assert set(remote_commands.ROUTES) <= set(commands.ADMIN)


@pytest.mark.parametrize("argv", [["keys", "init"], ["status"], ["user", "import", "users.csv"],
                                  ["client", "token"], ["token", "introspect", "-"], ["user", "mfa", "show", "ann"]])
def test_a_command_without_a_route_says_so_and_exits_2(argv, capsys, monkeypatch):
    monkeypatch.setenv("TOKENSRV_SERVER", "https://admin.example.org")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"tokensrv {' '.join(argv[:2] if argv[0] != 'status' else argv[:1])}: not available with --server\n"


async def _serve_page(tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A web server that is not tokensrv's admin listener: a page for every path."""
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>It works!</html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def not_tokensrv() -> AsyncIterator[str]:
    async for url in _serve_page():
        yield url


def self_signed(folder: Path) -> ssl.SSLContext:
    """A certificate for 127.0.0.1 that no authority signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
async def untrusted_https(tmp_path: Path) -> AsyncIterator[str]:
    async for url in _serve_page(self_signed(tmp_path)):
        yield url


async def test_a_server_that_is_not_the_admin_listener_is_one_line(not_tokensrv):
    creds = remote.Credentials(not_tokensrv, "ops", "s3cret", None)
    async with remote.session() as http:
        with pytest.raises(CLIError, match="answered HTTP 200 with something other than JSON") as caught:
            await remote.AdminAPI(http, creds).call("GET", "/admin/clients")
    assert "s3cret" not in str(caught.value)


async def test_an_unreachable_server_is_one_line():
    closed = f"http://127.0.0.1:{free_port()}"
    async with remote.session() as http:
        with pytest.raises(CLIError, match=f"cannot reach {closed} \\(Connection refused\\)"):
            await remote.AdminAPI(http, remote.Credentials(closed, "ops", "s", None)).call("GET", "/admin/keys")


async def test_a_certificate_no_authority_signed_is_refused_before_the_secret_is_sent(untrusted_https):
    async with remote.session() as http:
        with pytest.raises(CLIError, match=f"cannot reach {untrusted_https} \\(its TLS certificate is not trusted\\)"):
            api = remote.AdminAPI(http, remote.Credentials(untrusted_https, "ops", "s", None))
            await api.call("GET", "/admin/keys")



async def _site(host: str, *routes: web.RouteDef) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, host, port).start()
    return runner, port


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, str, list[web.Request]]]:
    """A fake admin index on 127.0.0.1 whose token_endpoint is a recording server on localhost: another host."""
    seen: list[web.Request] = []

    async def token(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"access_token": "t", "token_type": "Bearer"})

    token_runner, port = await _site("localhost", web.post("/token", token))
    token_url = f"http://localhost:{port}/token"
    index = {"token_endpoint": token_url, "scope": "tokensrv:admin"}

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(index if request.path == "/admin/" else [])

    runner, admin_port = await _site("127.0.0.1", web.get("/admin/{tail:.*}", answer))
    yield f"http://127.0.0.1:{admin_port}", token_url, seen
    await runner.cleanup()
    await token_runner.cleanup()


async def test_a_token_endpoint_on_another_host_gets_no_secret_unless_the_operator_names_it(elsewhere):
    server, token_url, seen = elsewhere
    async with remote.session() as http:
        with pytest.raises(CLIError, match="not on --server's host: pass --token-endpoint") as caught:
            await remote.AdminAPI(http, remote.Credentials(server, "ops", "s3cret", None)).call("GET", "/admin/clients")
        assert "s3cret" not in str(caught.value) and seen == []
        api = remote.AdminAPI(http, remote.Credentials(server, "ops", "s3cret", None, token_url))
        assert await api.call("GET", "/admin/clients") == []
    assert len(seen) == 1


def test_the_token_endpoint_comes_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.setenv("TOKENSRV_ADMIN_CLIENT_SECRET", "s")
    monkeypatch.setenv("TOKENSRV_TOKEN_ENDPOINT", "https://id.example.org/oauth2/token")
    assert remote.credentials(remote_args("--client-id", "ops"), "https://a.example.org").token_endpoint == TOKEN_URL
    with pytest.raises(CLIError, match="--token-endpoint"):
        remote.credentials(remote_args("--client-id", "ops", "--token-endpoint", "http://id.example.org/t"),
                           "https://a.example.org")
