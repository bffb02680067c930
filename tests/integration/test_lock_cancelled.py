"""A lock whose SET reached the store but whose answer had not come back when the caller was
cancelled (a shutdown cancels the key rotation at any await): the store holds the lock for a
caller that never learnt it, and every other instance would skip the rotation until the lock's
TTL ran out. The lock must be released anyway."""
from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from redis.asyncio import Redis

from tests.helpers.poll import eventually
from tokensrv.store import keyspace
from tokensrv.store.redis import RedisStore

LOCK = keyspace.lock("keys")


class HeldAnswers:
    """A TCP proxy in front of the store: commands go through at once, answers wait for `gate`."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.gate = asyncio.Event()
        self.gate.set()
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(self._pipe(reader, up_writer, gated=False), self._pipe(up_reader, writer, gated=True),
                             return_exceptions=True)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, gated: bool) -> None:
        try:
            while data := await src.read(65536):
                if gated:
                    await self.gate.wait()
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()


async def test_a_lock_cancelled_while_its_answer_is_on_the_way_is_released(redis_url, redis):
    address = urlsplit(redis_url)
    assert address.scheme == "redis" and address.hostname and address.port, redis_url
    proxy = HeldAnswers(address.hostname, address.port)
    server = await proxy.start()
    client = Redis(host="127.0.0.1", port=proxy.port)
    try:
        await client.ping()
        locks = RedisStore(client).locks

        async def rotate() -> None:
            async with locks.lock("keys", 60):
                pass

        proxy.gate.clear()
        task = asyncio.create_task(rotate())
        await eventually(lambda: redis.exists(LOCK), "the SET to reach the store", interval=0.001)
        task.cancel()  # while the answer is held: the caller cannot know it holds the lock
        proxy.gate.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert not await redis.exists(LOCK)
    finally:
        proxy.gate.set()
        await client.aclose()
        server.close()
