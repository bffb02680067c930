"""CPU per token request spent by tokensrv and aiohttp, without the network and the RSA signature.

`python -m bench.micro.request_path` builds the app as `tokensrv serve` does (the same Runner and
connection class, JSON log lines written to /dev/null, metrics), on its own Valkey, and feeds
keep-alive client_credentials requests (or, with --grant refresh_token, refresh_token requests, each
rotating another family, as the bench's refresh load does) straight into one connection's protocol object, reading
the answers from a transport that only collects bytes. The RSA signature is replaced by a constant
(it is 60-65 % of a request and measured elsewhere: bench/micro/test_sign.py), so what is timed is
the rest: parsing the request, the middlewares, client authentication, claims, the JSON answer,
the access and audit lines and the metrics. Run it with two checkouts' interpreters in turn
(`OTHER/.venv/bin/python -m bench.micro.request_path` from this folder) to compare them: the
figure is the median of --rounds batches of µs of CPU per request (process time, so a busy
machine costs wall time, not the figure).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import seed
from bench.procs import Layout, cli, pin_self, tokensrv_env, valkey
from bench.run import PASSWORD


class Collector(asyncio.Transport):
    """A transport that keeps what the server writes and counts the answers in it."""

    def __init__(self) -> None:
        super().__init__()
        self.answers = self.refused = 0
        self.closing = False
        self.awaited: tuple[int, asyncio.Future[None]] | None = None

    async def answered(self, count: int) -> None:
        """Until `count` answers were written: woken by write(), not polled (a request that waits for
        the store would have the loop spin, and its CPU counted, all the while)."""
        if self.answers < count:
            self.awaited = (count, asyncio.get_running_loop().create_future())
            await self.awaited[1]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.answers += bytes(data).count(b"HTTP/1.1 ")
        self.refused += bytes(data).count(b"HTTP/1.1 ") - bytes(data).count(b"HTTP/1.1 200 ")
        if self.awaited is not None and self.answers >= self.awaited[0]:
            self.awaited[1].set_result(None)
            self.awaited = None

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def token_request(client_id: str, secret: str, body: bytes = b"grant_type=client_credentials&scope=read") -> bytes:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return (f"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def measure(env: dict[str, str], requests: Iterator[bytes], rounds: int, batch: int, sign: bool) -> list[float]:
    from tokensrv.config import load_settings
    from tokensrv.observability.logs import setup_logging
    from tokensrv.server.app import PROVIDER, create_app
    from tokensrv.server.protocol import Runner

    settings = load_settings(env)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  # the log lines are made and written, to nowhere
    setup_logging("json")
    app = create_app(settings, run_schedule=False, deliver_logouts=False)
    runner = Runner(app, handle_signals=False, access_log=None, header_timeout=settings.header_timeout)
    await runner.setup()
    if not sign:
        app[PROVIDER].signature = lambda key, data: b"\x00" * 256
    transport = Collector()
    protocol = runner.server()  # type: ignore[misc]
    protocol.connection_made(transport)
    results = []
    try:
        for i in range(rounds + 1):  # the first batch warms up
            started, expected = time.process_time(), transport.answers + batch
            for _ in range(batch):
                wanted = transport.answers + 1
                protocol.data_received(next(requests))
                await transport.answered(wanted)
            assert transport.answers == expected and not transport.refused, f"{transport.refused} refused"
            if i:
                results.append((time.process_time() - started) * 1e6 / batch)
    finally:
        protocol.connection_lost(None)
        await runner.cleanup()
        sys.stderr = sys.__stderr__
    return results


def token_requests(env: dict[str, str], store_url: str, keys_dir: Path, grant: str, count: int) -> Iterator[bytes]:
    """The bench's client_credentials request, again and again; or `count` refresh_token requests,
    one per family (the bench's app client and user, their families minted as the password grant
    mints them)."""
    if grant == "client_credentials":
        created = cli(env, "client", "add", "--id", "bench-svc", "--grant-type", "client_credentials",
                      "--scope", "read")
        return itertools.repeat(token_request("bench-svc", str(created["client_secret"])))
    created = cli(env, "client", "add", "--id", "bench-app", "--first-party", "--grant-type", "password",
                  "--grant-type", "refresh_token", "--scope", "read")
    cli(env, "user", "add", "bench-user", "--role", "reader", "--password-stdin", stdin=PASSWORD + "\n")
    tokens = asyncio.run(seed.refresh_tokens(store_url, keys_dir, "bench-app", "bench-user", count))
    return (token_request("bench-app", str(created["client_secret"]), b"grant_type=refresh_token&refresh_token="
                          + token.encode()) for token in tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro.request_path", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=3000, help="requests per round")
    parser.add_argument("--sign", action="store_true", help="sign for real (RSA included in the figure)")
    parser.add_argument("--grant", choices=("client_credentials", "refresh_token"), default="client_credentials")
    args = parser.parse_args(argv)
    layout = Layout.detect()
    pin_self(layout.server(1))
    with tempfile.TemporaryDirectory(prefix="tokensrv-path-") as tmp, \
            valkey(Path(tmp) / "valkey", layout.store) as store:
        env = tokensrv_env(store.url, Path(tmp) / "keys", TOKENSRV_ISSUER="http://127.0.0.1")
        cli(env, "keys", "init")
        requests = token_requests(env, store.url, Path(tmp) / "keys", args.grant, (args.rounds + 1) * args.batch)
        found = asyncio.run(measure(env, requests, args.rounds, args.batch, args.sign))
    print(f"{sys.executable}: {args.grant}, {'with' if args.sign else 'without'} RSA: "
          f"median {statistics.median(found):.1f}, least {min(found):.1f} µs CPU per request, "
          f"rounds {[round(x, 1) for x in found]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
