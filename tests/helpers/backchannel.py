"""A relying party's back-channel logout endpoint, played by a real aiohttp server on loopback:
it records every POST and answers with the statuses a test scripts, then 200."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Hit:
    path: str
    content_type: str
    token: str | None  # the logout_token form field
    status: int  # what the receiver answered


@dataclass
class Receiver:
    hits: list[Hit] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer first
    port: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None

    def uri(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    async def wait_until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        """Until `done()` holds after a POST (the timeout only bounds a failing test)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)

    async def wait_for(self, path: str, count: int = 1) -> list[Hit]:
        await self.wait_until(lambda: len(self.on(path)) >= count)
        return self.on(path)

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = form.get("logout_token")
        scripted = self.answers.get(request.path)
        status = scripted.pop(0) if scripted else 200
        async with self._changed:
            self.hits.append(Hit(request.path, request.content_type, token if isinstance(token, str) else None,
                                 status))
            self._changed.notify_all()
        return web.Response(status=status)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
