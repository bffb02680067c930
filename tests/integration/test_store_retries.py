"""A store call whose answer is lost is not sent again: it may have run, and a second run of a
rotation would take the family's own new token for a reused one and revoke the family.

The answer is lost for real: the store is reached through a TCP relay that forwards the command
to Valkey, then drops Valkey's answer and cuts the connection (a network failure after the
server did the work)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError

from examples.topologies import ValkeyNode, free_port, wait_until
from tests.helpers.store import NOW, D, family, rotate
from tokensrv.store import Rotated
from tokensrv.store.connect import open_redis
from tokensrv.store.redis import RedisStore


class LossyRelay:
    """Relays connections to Valkey; while `lose_answer` is set, the next answer Valkey sends is
    dropped and that connection cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.lose_answer = False
        self.lost = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    if answers and self.lose_answer:
                        self.lose_answer, self.lost = False, self.lost + 1
                        break  # dropped, and the connection goes with it
                    writer.write(data)
                    await writer.drain()
            for w in (client_writer, server_writer):
                w.close()
        await asyncio.gather(pump(client_reader, server_writer, False), pump(server_reader, client_writer, True))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def relayed(request, tmp_path, redis_url) -> AsyncIterator[tuple[LossyRelay, str]]:
    """A relay, and the store URL that reaches Valkey through it: the one server, or a Cluster
    (one primary holding every slot) that announces the relay's port as its own, so that the
    Cluster client, too, only ever talks through the relay."""
    if request.param == "single":
        where = parse_url(redis_url)
        relay = LossyRelay(where.get("host", "127.0.0.1"), int(where.get("port", 6379)))
        yield relay, f"redis://127.0.0.1:{await relay.start()}"
        await relay.close()
        return
    relay_port = free_port()
    node = ValkeyNode("cluster", tmp_path / "cluster", ["--cluster-enabled", "yes",
                      "--cluster-announce-port", str(relay_port), "--cluster-port", str(free_port())])
    node.start()
    try:
        with node.client() as admin:
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(lambda: "cluster_state:ok" in str(node.client().execute_command("CLUSTER", "INFO")),
                   "the one-node cluster to be ok")
        relay = LossyRelay("127.0.0.1", node.port)
        await relay.start(relay_port)
        yield relay, f"redis+cluster://127.0.0.1:{relay_port}"
        await relay.close()
    finally:
        node.stop()


@pytest.mark.parametrize("relayed", ["single", "cluster"], indirect=True)
async def test_a_rotation_whose_answer_was_lost_ran_once(relayed, redis):
    relay, url = relayed  # `redis`: the session's one server emptied first
    through_relay = open_redis(url)
    store = RedisStore(through_relay)
    try:
        await store.refresh.create_family(family("warm"), D[0], "j0", NOW + 900, idle_ttl=NOW)
        assert isinstance(await rotate(store, "warm", D[0], D[1], "app", NOW, "w1", NOW + 900, NOW, 0), Rotated)
        await store.refresh.create_family(family(), D[0], "j0", NOW + 900, idle_ttl=NOW)

        relay.lose_answer = True
        with pytest.raises(RedisConnectionError):  # the request fails (closed: a 503)
            await rotate(store, "fam1", D[0], D[1], "app", NOW, "j1", NOW + 900, NOW, 0)
        assert relay.lost == 1

        found = await store.refresh.get_family("fam1", D[1])
        assert found is not None and found[1]  # it ran once: the family lives, D[1] its live token
        outcome = await rotate(store, "fam1", D[1], D[2], "app", NOW, "j2", NOW + 900, NOW, 0)
        assert isinstance(outcome, Rotated)
    finally:
        await through_relay.aclose()
