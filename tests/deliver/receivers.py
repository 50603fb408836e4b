"""Real local servers the deliver tests send to: a webhook receiver that verifies every
delivery with the `standardwebhooks` reference library, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook


@dataclass
class Received:
    path: str
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    # One verification per secret the receiver knows for the path (rotation: several).
    verified: list[bool]


@dataclass
class WebhookReceiver:
    """Paths and what they answer:
    /ok 200 · /fail 500 · /throttle 429 + Retry-After: 120 · /unavailable 503 + Retry-After ·
    /gone 410 · /redirect 302 to /ok · /hang never answers · /abort 500 + abort-message.
    `mode[path] = status` overrides a path's answer."""

    secrets: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    mode: dict[str, int] = field(default_factory=dict)
    base: str = ""
    runner: web.AppRunner | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()

    def url(self, path: str, secret: str | list[str]) -> str:
        self.secrets[path] = [secret] if isinstance(secret, str) else list(secret)
        return f"{self.base}{path}"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until `predicate()` holds after some delivery, or fail after `timeout`."""
        async def check() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)
        await asyncio.wait_for(check(), timeout)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = []
        for secret in self.secrets.get(request.path, []):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except Exception:
                verified.append(False)
        self.received.append(Received(request.path, headers.get("webhook-id", ""), headers,
                                      body, verified))
        self.ids.add(headers.get("webhook-id", ""))
        self.arrived.set()
        async with self.changed:
            self.changed.notify_all()
        name = request.path
        status = self.mode.get(name)
        if status is not None:
            return web.Response(status=status)
        if name == "/ok" or name.startswith("/ep"):
            return web.Response(status=200, text="ok")
        if name == "/fail":
            return web.Response(status=500, text="boom")
        if name == "/throttle":
            return web.Response(status=429, headers={"Retry-After": "120"})
        if name == "/unavailable":
            return web.Response(status=503, headers={"Retry-After": "30"})
        if name == "/gone":
            return web.Response(status=410)
        if name == "/redirect":
            raise web.HTTPFound(location="/ok")
        if name == "/abort":
            return web.Response(status=500, headers={"webhook-delivery": "abort-message"})
        if name == "/hang":
            await self.release.wait()
            return web.Response(status=200)
        return web.Response(status=404)


class SmtpCapture:
    """aiosmtpd handler: 550 for @reject.test, 451 for @busy.test, else 250 and keep it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.on_message: Callable[[], None] | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address.endswith("@reject.test"):
            return "550 5.1.1 User unknown"
        if address.endswith("@busy.test"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_smtp(handler: SmtpCapture, **kwargs: Any) -> Controller:
    # aiosmtpd's controller connects to its own port to check it is up, so it needs a real one.
    ctl = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    ctl.start()
    return ctl
