"""Hostile and broken clients on raw sockets against a real `tokensrv serve`: slow or stalled
requests are cut off, an announced body over the limit is refused unread, a client that hangs up
is no store outage, and what aiohttp's parser refuses gets an RFC 6749 answer that echoes nothing.

The servers run with 1-second header and body timeouts so that the tests are quick; every wait
is a poll with a generous deadline, never a fixed sleep."""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest

from tests.helpers.http import metric_samples, metric_total
from tests.helpers.live import LiveServer
from tests.helpers.poll import eventually_sync

QUICK = {"TOKENSRV_HEADER_TIMEOUT": "1", "TOKENSRV_BODY_TIMEOUT": "1"}
DEADLINE = 30.0  # far beyond the 1 s timeouts: only a server that never gives up reaches it
TICK = 0.2  # how often a slow client sends its next byte (the read timeout paces it)
FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
SECRET = "s3cr3t-" + "A" * 40


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(**QUICK)


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    sock.settimeout(TICK)
    return sock


def until_closed(sock: socket.socket, dribble: bytes = b"") -> bytes:
    """What the server sends until it closes the connection, while the client sends `dribble`
    one byte per tick; fails if the connection is still open at the deadline."""
    received, deadline, sent = b"", time.monotonic() + DEADLINE, 0
    with sock:
        while time.monotonic() < deadline:
            if sent < len(dribble):
                try:
                    sock.sendall(dribble[sent:sent + 1])
                except OSError:  # closed by the server under our feet
                    return received
                sent += 1
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    raise AssertionError(f"the connection is still open after {DEADLINE} s; received {received[:200]!r}")


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_a_client_dribbling_its_headers_is_cut_off(server):
    sock = connect(server)
    sock.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nX-Pad: ")
    assert until_closed(sock, dribble=b"a" * 1000) == b""  # closed, never answered
    eventually_sync(lambda: "no complete request head within 1.0 s" in server.log(), "the log line", timeout=DEADLINE)


def test_a_connection_that_sends_nothing_is_closed(server):
    assert until_closed(connect(server)) == b""


def test_a_stalled_body_gets_408_and_the_connection_closes(server):
    sock = connect(server)
    sock.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n" + FORM + b"Content-Length: 100\r\n\r\ngrant_type")
    status, headers, body = parse(until_closed(sock))
    assert (status, json.loads(body)["error"]) == (408, "invalid_request")
    assert headers["connection"] == "close"


def test_an_announced_body_over_the_limit_is_refused_unread(server):
    """413 at once: the 10 MiB are never sent, and the answer is not the 408 of a body that
    stalled (so it did not wait for them)."""
    sock = connect(server)
    sock.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n" + FORM + b"Content-Length: 10485760\r\n\r\n")
    status, _, body = parse(until_closed(sock))
    assert (status, json.loads(body)["error"]) == (413, "invalid_request")


@pytest.mark.parametrize("path", ["/oauth2/token", "/login"])
def test_a_client_that_hangs_up_mid_body_is_no_store_outage(server, path):
    sock = connect(server)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + FORM + b"Content-Length: 100\r\n\r\ngrant_")
    # the handler is reading the body: in flight besides the scrape that asks
    eventually_sync(lambda: metric_total(metric_samples(server), "tokensrv_http_requests_in_flight") == 2,
                    "the request to be in flight", timeout=DEADLINE)
    sock.close()
    eventually_sync(lambda: f"POST {path}: client abort" in server.log(), "the client abort line", timeout=DEADLINE)
    assert "store unreachable" not in server.log()
    samples = metric_samples(server)
    assert metric_total(samples, "tokensrv_http_requests_total", route=path, status="503") == 0
    assert metric_total(samples, "tokensrv_http_requests_total", route=path, status="499") == 1


REFUSED = {
    "a header over 8 KiB": b"GET /oauth2/userinfo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                           + SECRET.encode() + b"B" * 9000 + b"\r\n\r\n",
    "1000 headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode() + b"\r\n"
                    + b"".join(b"X-%d: a\r\n" % i for i in range(1000)) + b"\r\n",
    "a bad byte in a header": b"GET /oauth2/userinfo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                              + SECRET.encode() + b"\x01\r\n\r\n",
    "a bad request line": b"GET /healthz " + SECRET.encode() + b"\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
def test_what_the_http_parser_refuses_is_an_rfc_6749_error_that_echoes_nothing(server, request_bytes):
    sock = connect(server)
    sock.sendall(request_bytes)
    answer = until_closed(sock)
    status, headers, body = parse(answer)
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert set(json.loads(body)) == {"error", "error_description"} and json.loads(body)["error"] == "invalid_request"
    assert headers["server"] == "tokensrv"
    assert SECRET.encode() not in answer and b"Bearer" not in answer and b"\\x" not in answer
    eventually_sync(lambda: "refused a malformed request" in server.log(), "the refusal's log line", timeout=DEADLINE)
    log = server.log()
    assert "Traceback" not in log and SECRET not in log and "Bearer" not in log
    assert sum("refused a malformed request" in line for line in log.splitlines()) == 1


def test_the_server_header_names_no_versions(server):
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, _ = parse(until_closed(sock))
    assert status == 200 and headers["server"] == "tokensrv"
