"""HTTP-level edges in the application: forms with too many or repeated fields, bodies that cannot
be decoded, the Server header, and the settings that bound slow clients. (The raw-socket side,
timeouts and the parser's refusals, is tests/e2e/test_slow_clients.py against a real server.)"""
from __future__ import annotations

import sys

import pytest

from tokensrv.cli.serve import run
from tokensrv.config import ConfigError, load_settings

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
URL = {"TOKENSRV_REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect", "/login"])
async def test_a_form_of_more_than_1000_fields_under_the_size_limit_is_invalid_request(client, path):
    body = "&".join(f"f{i}=1" for i in range(1001)).encode()
    assert len(body) < 64 * 1024
    resp = await client.post(path, data=body, headers=FORM)
    assert resp.status == 400, await resp.text()
    if path != "/login":  # the login page answers with a page
        assert await resp.json() == {"error": "invalid_request",
                                     "error_description": "the request has too many parameters"}


async def test_a_parameter_repeated_past_1000_times_is_the_repeated_error(client):
    resp = await client.post("/oauth2/token", data=b"&".join([b"grant_type=client_credentials"] * 1001),
                             headers=FORM)
    assert resp.status == 400
    assert await resp.json() == {"error": "invalid_request",
                                 "error_description": "parameter 'grant_type' is repeated"}


@pytest.mark.parametrize("path", ["/oauth2/token", "/login"])
async def test_a_body_that_cannot_be_decoded_is_invalid_request_not_500(client, path):
    resp = await client.post(path, data=b"not a gzip stream" * 4,
                             headers={**FORM, "Content-Encoding": "gzip"})
    assert resp.status == 400
    assert await resp.json() == {"error": "invalid_request", "error_description": "the request body is malformed"}


@pytest.mark.parametrize("method, path", [("GET", "/healthz"), ("GET", "/.well-known/jwks.json"),
                                          ("GET", "/nowhere"), ("POST", "/oauth2/token"), ("GET", "/login")])
async def test_the_server_header_names_no_versions(client, method, path):
    resp = await client.request(method, path)
    assert resp.headers["Server"] == "tokensrv"


@pytest.mark.parametrize("name", ["TOKENSRV_HEADER_TIMEOUT", "TOKENSRV_BODY_TIMEOUT"])
@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_the_read_timeouts_must_be_positive_numbers(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({**URL, name: value})


def test_the_read_timeouts_have_defaults_and_take_fractions():
    assert (load_settings(URL).header_timeout, load_settings(URL).body_timeout) == (10.0, 10.0)
    s = load_settings({**URL, "TOKENSRV_HEADER_TIMEOUT": "2.5", "TOKENSRV_BODY_TIMEOUT": "30"})
    assert (s.header_timeout, s.body_timeout) == (2.5, 30.0)


def test_what_runs_in_the_server_is_not_chained_to_a_missing_uvloop(monkeypatch):
    """Without uvloop, every traceback the server logged said "During handling of the above
    exception (ModuleNotFoundError: uvloop), another exception occurred"."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed

    async def fail() -> None:
        raise ValueError("boom")

    async def handling() -> BaseException | None:
        return sys.exc_info()[1]

    assert run(handling()) is None
    with pytest.raises(ValueError) as raised:
        run(fail())
    assert raised.value.__context__ is None
