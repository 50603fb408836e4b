"""Where the demo's deliveries land: real local servers, one per channel.

- `WebhookSink`: an aiohttp server; each subscription posts to `/hooks/<subscription id>`, and
  every delivery is verified with the `standardwebhooks` reference library and that
  subscription's secret.
- `SmtpSink`: an aiosmtpd SMTP server running in this event loop.
- `SmsSink`: the Twilio stand-in (Twilio's REST contract and signed status callbacks); its
  calls (`voice`) are recorded too, once each has been played: whether it was answered, what
  was said and which keys were pressed.

Each message a sink receives becomes one `Received`, stamped with the scenario time, and is
passed to `on_receive` (the demo's live timeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook, WebhookVerificationError

from capmon.demo.twilio_calls import CallBehaviour, Calls
from capmon.demo.twilio_standin import TwilioStandIn
from monitor.clock import Clock

TOLERANCE = timedelta(minutes=5)  # the reference library's


class ScenarioWebhook(Webhook):
    """The reference verifier, with its 5-minute timestamp tolerance measured against the
    scenario clock instead of the wall clock (a 2022 delivery is otherwise "too old")."""

    def __init__(self, secret: str, clock: Clock) -> None:
        super().__init__(secret)
        self._clock = clock

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:
        try:
            timestamp = datetime.fromtimestamp(float(timestamp_header), tz=UTC)
        except (ValueError, OverflowError):
            raise WebhookVerificationError("Invalid Signature Headers") from None
        if abs(timestamp - self._clock.now()) > TOLERANCE:
            raise WebhookVerificationError("Message timestamp outside the tolerance")
        return timestamp


@dataclass
class Received:
    channel: str
    recipient: str
    received_at: datetime
    notification_key: str | None
    headers: dict[str, str]
    body: str
    signature_verified: bool | None = None
    subscription_id: str | None = None
    summary: str = ""
    # A call: its sid, the delivery attempt, how it ended, who answered, the keys pressed.
    call: dict[str, Any] | None = None


Listener = Callable[[Received], None]


@dataclass
class _Sink:
    clock: Clock
    on_receive: Listener | None = None
    received: list[Received] = field(default_factory=list)

    def record(self, item: Received) -> None:
        self.received.append(item)
        if self.on_receive is not None:
            self.on_receive(item)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class WebhookSink(_Sink):
    secrets: dict[str, str] = field(default_factory=dict)  # subscription id -> whsec_...
    base: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hooks/{sub}", self._handle)
        self._runner, self.base = await _serve(app)
        return self.base

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, placeholder: str) -> str:
        """A URL to register before the subscription id is known; see `bind`."""
        return f"{self.base}/hooks/{placeholder}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        # Standard Webhooks' reference verifier reads lower-case header names.
        headers = {k.lower(): v for k, v in request.headers.items()}
        sub_id = request.match_info["sub"]
        secret = self.secrets.get(sub_id)
        verified = False
        if secret is not None:
            try:
                ScenarioWebhook(secret, self.clock).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        summary = ""
        with contextlib.suppress(ValueError, AttributeError):
            summary = str(json.loads(body).get("data", {}).get("summary", ""))
        self.record(Received(
            channel="webhook", recipient=str(request.url), received_at=self.clock.now(),
            notification_key=headers.get("webhook-id"), headers=headers,
            body=body.decode("utf-8", "replace"), signature_verified=verified,
            subscription_id=sub_id, summary=summary))
        # A receiver that cannot verify a delivery refuses it, as Standard Webhooks advise.
        return web.Response(status=204 if verified else 401)


@dataclass
class SmtpSink(_Sink):
    host: str = "127.0.0.1"
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="smtp.demo.capmon.invalid"), self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        headers = {k: str(v) for k, v in message.items()}
        for rcpt in envelope.rcpt_tos:
            self.record(Received(
                channel="email", recipient=rcpt, received_at=self.clock.now(),
                notification_key=headers.get("X-Capmon-Notification-Key"), headers=headers,
                body=raw.decode("utf-8", "replace"), summary=headers.get("Subject", "")))
        return "250 Message accepted for delivery"


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class _RecordedCalls(Calls):
    """The stand-in's Calls API, recording each call once it has been played (so the
    record says whether anyone heard it), in the scenario minute it was placed in."""

    def __init__(self, twilio: TwilioStandIn, clock: Clock, recorder: _Sink) -> None:
        super().__init__(twilio, clock.now)
        self._recorder = recorder

    async def _play(self, sid: str, form: dict[str, Any], behaviour: CallBehaviour) -> None:
        try:
            await super()._play(sid, form, behaviour)
        finally:
            played = self.played[sid]
            query = _query(form.get("StatusCallback", ""))
            said = [" ".join(line.split()) for line in played.said]
            # The first sentence is the greeting naming the subscription: the timeline's
            # line names it already, and the alert's own words follow.
            words = said[0].partition(". ")[2] if said else ""
            heard = played.ended == "completed"
            keys = "".join(digits for digits, _ in played.keys)
            outcome = (f"answered ({played.answered_by or 'human'})"
                       + (f", pressed {keys}" if keys else "") if heard
                       else f"{played.ended or 'not placed'}, nobody heard it")
            self._recorder.record(Received(
                channel="voice", recipient=form.get("To", ""), received_at=self.now(),
                notification_key=query.get("key"), headers={}, body="\n".join(said),
                summary=f"{outcome}: {words}" if heard else outcome,
                call={"sid": sid, "attempt": int(query.get("attempt", "1")),
                      "outcome": played.ended, "answered_by": played.answered_by,
                      "keys": [digits for digits, _ in played.keys]}))


class SmsSink(TwilioStandIn):
    """The Twilio stand-in, recording each accepted message with the scenario time, and
    each call it played."""

    def __init__(self, clock: Clock, on_receive: Listener | None = None, **kwargs: Any) -> None:
        super().__init__(now=clock.now, **kwargs)
        self.clock = clock
        # Composed rather than inherited: the stand-in's own base class is fixed.
        self._recorder = _Sink(clock, on_receive)
        self.received = self._recorder.received
        self.voice = _RecordedCalls(self, clock, self._recorder)

    def in_flight(self) -> int:
        return len(self._tasks)

    async def _create(self, request: web.Request) -> web.Response:
        response = await super()._create(request)
        if response.status == 201:
            form = self.requests[-1]
            item = Received(
                channel="sms", recipient=form.get("To", ""), received_at=self.clock.now(),
                notification_key=_query(form.get("StatusCallback", "")).get("key"),
                headers={k: v for k, v in request.headers.items()
                         if k.lower() != "authorization"},
                body=form.get("Body", ""), summary=form.get("Body", ""))
            self._recorder.record(item)
        return response
