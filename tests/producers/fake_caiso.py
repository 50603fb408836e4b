"""A real aiohttp server on 127.0.0.1 that plays CAISO's URLs for producer tests.

Each path serves a queue of scripted replies (the last one repeats); every request is recorded
with the injected clock's time, its query and its headers. ETag / Last-Modified are honoured
like a CDN would: a matching If-None-Match gets 304. A reply can be held (it goes chunked):
its whole body is sent, then the end of the response waits, so the client has every byte of an
answer its fetch has not returned yet (the chaos suite kills the producer right then).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from monitor.clock import Clock


@dataclass
class Hold:
    """`sent` is set once the body is out; the response ends when `release` is set."""

    sent: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    content_type: str = "text/plain"
    chunked: bool = False
    hold: Hold | None = None


@dataclass(frozen=True)
class Seen:
    path: str
    at: datetime
    query: dict[str, str]
    headers: dict[str, str]


class FakeCaiso:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self._arrived = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_route("GET", "/{tail:.*}", self._handle)

    def script(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(predicate), timeout)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(Seen(path, self.clock.now(), dict(request.query),
                                  dict(request.headers)))
        async with self._arrived:
            self._arrived.notify_all()
        queue = self.replies.get(path)
        if not queue:
            return web.Response(status=404, text="not found")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        headers = dict(reply.headers)
        if reply.etag is not None:
            headers["ETag"] = reply.etag
            if request.headers.get("If-None-Match") == reply.etag:
                return web.Response(status=304, headers=headers)
        if reply.chunked or reply.hold is not None:
            resp = web.StreamResponse(status=reply.status, headers=headers)
            resp.content_type = reply.content_type
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(0, len(reply.body), 65536):
                await resp.write(reply.body[i:i + 65536])
            if reply.hold is not None:
                reply.hold.sent.set()
                await reply.hold.release.wait()
            # A held client may be gone by the time the response ends.
            with contextlib.suppress(ConnectionResetError):
                await resp.write_eof()
            return resp
        return web.Response(status=reply.status, body=reply.body, headers=headers,
                            content_type=reply.content_type)
