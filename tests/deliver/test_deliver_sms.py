"""SMS through the real `twilio` client against a local stand-in of Twilio's REST API, with
status callbacks and inbound STOP/START/HELP arriving, signed, at capmon's real API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs
from twilio.request_validator import RequestValidator

from capmon.demo.twilio_standin import Behaviour, TwilioStandIn
from consumers.deliver.deliverer import Deliverer
from consumers.notifiers.sms import SmsConfig, SmsNotifier
from consumers.notifiers.sms_text import is_single_segment
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.store import Store, endpoints
from monitor.store import subscriptions as sub_store
from monitor.store.schema import sms_messages, subscriptions
from tests.deliver.conftest import make_deliverer
from tests.deliver.helpers import add_subscription, add_tenant, notification
from tests.deliver.twilio_api import twilio_api

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-" + uuid.uuid4().hex
SERVICE = "MG" + "fedcba9876543210" * 2
PHONE = "+16265550123"


@dataclass
class SmsEnv:
    store: Store
    bus: MemoryBus
    clock: ManualClock
    settings: Settings
    api: str
    twilio: TwilioStandIn
    deliverer: Deliverer
    tenant_id: str
    http: aiohttp.ClientSession

    async def subscription(self, phone: str = PHONE, status: str = "active") -> str:
        return await add_subscription(self.store, self.tenant_id, "sms", phone,
                                      self.clock.now(), status=status)

    async def status_of(self, sub_id: str) -> tuple[str, str | None]:
        async with self.store.connect() as conn:
            row = (await conn.execute(sa.select(subscriptions.c.status,
                                                subscriptions.c.status_reason)
                                      .where(subscriptions.c.id == sub_id))).one()
        return row[0], row[1]

    async def entry(self, key: str) -> ledger.LedgerEntry:
        async with self.store.connect() as conn:
            e = await ledger.get(conn, key)
        assert e is not None
        return e

    def receive(self, phone: str, body: str, sid: str | None = None) -> dict[str, str]:
        """A text Twilio receives now (a second after the previous one): its webhook's form."""
        self.clock.advance(1)
        return self.twilio.receive(phone, "+15005550006", body, self.clock.now(), sid=sid)

    async def inbound(self, phone: str, body: str, sid: str | None = None) -> tuple[int, str]:
        """Twilio receives a text and posts it, signed; a known `sid` is its webhook again."""
        known = self.twilio.webhooks.get(sid) if sid else None
        return await self.post_inbound(known or self.receive(phone, body, sid))

    async def post_inbound(self, params: dict[str, str]) -> tuple[int, str]:
        url = f"{self.api}/v1/twilio/inbound"
        sig = RequestValidator(TOKEN).compute_signature(url, params)
        async with self.http.post(url, data=params, headers={"X-Twilio-Signature": sig}) as r:
            return r.status, await r.text()


async def _env(store: Store, memory_bus: MemoryBus, *, from_number: str | None = None
               ) -> AsyncIterator[SmsEnv]:
    clock = ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))
    async with twilio_api(store, memory_bus, clock, ACCOUNT, TOKEN,
                          messaging_service_sid=None if from_number else SERVICE,
                          from_number=from_number) as t:
        config = SmsConfig.from_settings(t.settings)
        assert config is not None
        deliverer = await make_deliverer(store, memory_bus, clock, {"sms": SmsNotifier(config)})
        tenant_id, _ = await add_tenant(store, clock.now())
        yield SmsEnv(store, memory_bus, clock, t.settings, t.api, t.twilio, deliverer,
                     tenant_id, t.http)


@pytest.fixture
async def sms(store: Store, memory_bus: MemoryBus) -> AsyncIterator[SmsEnv]:
    async for env in _env(store, memory_bus):
        yield env


async def test_sent_through_messaging_service_and_tracked_by_signed_callbacks(
        sms: SmsEnv) -> None:
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    await sms.deliverer.submit(n)

    [form] = sms.twilio.requests
    assert form["To"] == PHONE and form["MessagingServiceSid"] == SERVICE
    assert "From" not in form
    assert form["StatusCallback"] == f"{sms.api}/v1/twilio/status?key={n.key}&attempt=1"
    assert is_single_segment(form["Body"])
    assert "EEA 3" in form["Body"] and form["Body"].endswith(f"/n/{n.key[:12]}")
    e = await sms.entry(n.key)
    assert e.state == "delivered"
    await sms.twilio.wait_callbacks(3)
    assert [(s, a) for _, s, a in sms.twilio.callbacks] == [
        ("queued", 204), ("sent", 204), ("delivered", 204)]
    async with sms.store.connect() as conn:
        row = (await conn.execute(sa.select(sms_messages))).one()
    assert row.sid.startswith("SM") and row.notification_key == n.key
    assert row.status == "delivered"
    # The detail link in the SMS resolves on the API.
    async with sms.http.get(f"{sms.api}/n/{n.key[:12]}") as r:
        assert r.status == 200 and "EEA 3" in await r.text()


async def test_from_number_when_no_messaging_service(store: Store,
                                                     memory_bus: MemoryBus) -> None:
    async for env in _env(store, memory_bus, from_number="+15005550006"):
        sub_id = await env.subscription()
        await env.deliverer.submit(notification(env.tenant_id, sub_id, "sms", PHONE))
        [form] = env.twilio.requests
        assert form["From"] == "+15005550006" and "MessagingServiceSid" not in form


@pytest.mark.parametrize(("code", "state", "sub_status", "attempt_outcome"), [
    (21211, "dead", "disabled", "failed"),
    (21610, "dead", "unsubscribed", "failed"),
    (21614, "dead", "disabled", "failed"),
    (20429, "failed", "active", "retry"),
])
async def test_synchronous_error_codes(sms: SmsEnv, code: int, state: str, sub_status: str,
                                       attempt_outcome: str) -> None:
    sms.twilio.behaviours[PHONE] = Behaviour(error=code)
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    await sms.deliverer.submit(n)
    e = await sms.entry(n.key)
    assert e.state == state
    async with sms.store.connect() as conn:
        [a] = await ledger.attempts_for(conn, n.key)
    assert a["outcome"] == attempt_outcome and a["provider_error"] == str(code)
    status, reason = await sms.status_of(sub_id)
    assert status == sub_status
    if sub_status != "active":
        assert reason is not None and str(code) in reason


@pytest.mark.parametrize(("code", "state", "sub_status"), [
    (30003, "failed", "active"),
    (30008, "failed", "active"),
    (30005, "dead", "disabled"),
    (30006, "dead", "disabled"),
])
async def test_failures_reported_by_status_callback(sms: SmsEnv, code: int, state: str,
                                                    sub_status: str) -> None:
    release = asyncio.Event()
    sms.twilio.behaviours[PHONE] = Behaviour(statuses=("queued", "sent", "undelivered"),
                                             error_code=code, release=release)
    dlq = sms.bus.subscribe(["capmon.notifications.dlq.v1"], "test-dlq")
    await dlq.start()
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    await sms.deliverer.submit(n)
    assert (await sms.entry(n.key)).state == "delivered"  # accepted by Twilio
    release.set()
    await sms.twilio.wait_callbacks(3)
    e = await sms.entry(n.key)
    assert e.state == state and str(code) in (e.last_error or "")
    assert (await sms.status_of(sub_id))[0] == sub_status
    if state == "failed":
        # Retried on the schedule: the next attempt goes out when due.
        sms.twilio.behaviours[PHONE] = Behaviour()
        assert e.next_attempt_at is not None
        sms.clock.advance(10)
        assert await sms.deliverer.run_due() == 1
        assert (await sms.entry(n.key)).state == "delivered"
        assert len(sms.twilio.requests) == 2
    else:
        msg = await dlq.get(timeout=5)
        assert msg is not None and msg.key == n.key


async def test_failure_callback_that_overtakes_the_send_is_not_lost(sms: SmsEnv) -> None:
    sms.twilio.behaviours[PHONE] = Behaviour(statuses=("queued", "failed"), error_code=30005,
                                             callbacks_first=True)
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    await sms.deliverer.submit(n)
    assert [(s, a) for _, s, a in sms.twilio.callbacks] == [("queued", 204), ("failed", 204)]
    e = await sms.entry(n.key)
    assert e.state == "dead" and "30005" in (e.last_error or "")
    assert (await sms.status_of(sub_id))[0] == "disabled"


async def test_callbacks_never_move_a_message_backwards(sms: SmsEnv) -> None:
    sub_id = await sms.subscription()
    await sms.deliverer.submit(notification(sms.tenant_id, sub_id, "sms", PHONE))
    await sms.twilio.wait_callbacks(3)
    sid = sms.twilio.callbacks[0][0]
    url = f"{sms.api}/v1/twilio/status"
    late = {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": ACCOUNT}
    assert await sms.twilio.post_signed(sms.http, url, late) == 204
    async with sms.store.connect() as conn:
        status = (await conn.execute(sa.select(sms_messages.c.status))).scalar_one()
    assert status == "delivered"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
async def test_unsigned_or_forged_callbacks_are_refused(sms: SmsEnv, signature: str) -> None:
    url = f"{sms.api}/v1/twilio/status"
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "failed", "ErrorCode": "30005"}
    assert await sms.twilio.post_signed(sms.http, url, params, signature=signature) == 403


async def test_inbound_stop_start_help(sms: SmsEnv) -> None:
    a = await sms.subscription()
    b = await sms.subscription()
    other = await sms.subscription(phone="+16265550999")
    status, body = await sms.inbound(PHONE, " stop ")
    assert status == 200 and "<Response>" in body and "<Message>" not in body
    assert (await sms.status_of(a)) == ("unsubscribed", "sms STOP")
    assert (await sms.status_of(b))[0] == "unsubscribed"
    assert (await sms.status_of(other))[0] == "active"
    # An unsubscribed contact gets nothing more.
    n = notification(sms.tenant_id, a, "sms", PHONE)
    await sms.deliverer.submit(n)
    assert (await sms.entry(n.key)).state == "suppressed" and sms.twilio.requests == []

    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", PHONE) == "sms STOP"
        assert await endpoints.opted_out(conn, "sms", "+16265550999") is None

    status, _ = await sms.inbound(PHONE, "START")
    assert status == 200 and (await sms.status_of(a)) == ("active", None)
    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", PHONE) is None
    status, body = await sms.inbound(PHONE, "help")
    assert status == 200 and "Reply STOP" in body and "<Message>" in body


async def test_start_does_not_undo_an_operator_disable(sms: SmsEnv) -> None:
    sub_id = await sms.subscription(status="paused")
    await sms.inbound(PHONE, "START")
    assert (await sms.status_of(sub_id))[0] == "paused"


async def test_start_undoes_an_opt_out_twilio_reported(sms: SmsEnv) -> None:
    """A number that replied STOP to Twilio directly (21610 on send) is the recipient's own
    opt-out too: their START must bring the subscription back (the tenant cannot)."""
    sms.twilio.behaviours[PHONE] = Behaviour(error=21610)
    sub_id = await sms.subscription()
    await sms.deliverer.submit(notification(sms.tenant_id, sub_id, "sms", PHONE))
    assert (await sms.status_of(sub_id))[0] == "unsubscribed"
    async with sms.store.connect() as conn:
        assert (await endpoints.opted_out(conn, "sms", PHONE) or "").startswith("unsubscribed")
    status, _ = await sms.inbound(PHONE, "START")
    assert status == 200 and (await sms.status_of(sub_id)) == ("active", None)
    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", PHONE) is None


@pytest.mark.parametrize("body", ["STOP.", "Stop!", "  stop  ", "Stop all", "UNSUBSCRIBE!",
                                  "stop  ALL", "\"Quit\"", "OptOut...", "stop_"])
async def test_stop_words_as_twilio_reads_them(sms: SmsEnv, body: str) -> None:
    sub = await sms.subscription()
    status, _ = await sms.inbound(PHONE, body)
    assert status == 200
    assert await sms.status_of(sub) == ("unsubscribed", "sms STOP")


@pytest.mark.parametrize("body", ["Yes, stop", "YES please stop", "Start over? STOP"])
async def test_a_sentence_is_not_a_keyword(sms: SmsEnv, body: str) -> None:
    """Twilio acts on a keyword only when it is the whole message: a sentence opening with
    YES or START must not opt a number back in."""
    sub = await sms.subscription()
    assert (await sms.inbound(PHONE, "STOP"))[0] == 200
    status, body_ = await sms.inbound(PHONE, body)
    assert status == 200 and "<Message>" not in body_
    assert await sms.status_of(sub) == ("unsubscribed", "sms STOP")
    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", PHONE) == "sms STOP"


@pytest.mark.parametrize("body", ["End of shift, thanks", "cancel the 4pm call"])
async def test_a_sentence_opening_with_a_stop_word_does_not_opt_out(sms: SmsEnv,
                                                                     body: str) -> None:
    sub = await sms.subscription()
    assert (await sms.inbound(PHONE, body))[0] == 200
    assert (await sms.status_of(sub))[0] == "active"


async def test_a_stop_from_a_number_with_no_subscription_still_binds_it(sms: SmsEnv) -> None:
    stranger = "+16265550123"
    assert (await sms.inbound(stranger, "STOP"))[0] == 200
    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", stranger) == "sms STOP"
        assert await endpoints.opt_out_refusal(conn, "sms", stranger)


async def test_a_start_twilio_received_before_the_last_stop_does_not_undo_it(
        sms: SmsEnv) -> None:
    """Webhooks arrive late and out of order (and a captured one can be held back): what
    counts is when Twilio received each text."""
    sub = await sms.subscription()
    early_start = sms.receive(PHONE, "START")
    assert (await sms.inbound(PHONE, "STOP"))[0] == 200
    assert (await sms.post_inbound(early_start))[0] == 200
    assert await sms.status_of(sub) == ("unsubscribed", "sms STOP")
    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", PHONE) == "sms STOP"
    # A START Twilio received after the STOP still opts the number in.
    assert (await sms.inbound(PHONE, "START"))[0] == 200
    assert await sms.status_of(sub) == ("active", None)


async def test_a_signed_start_twilio_never_received_is_refused(sms: SmsEnv) -> None:
    sub = await sms.subscription()
    assert (await sms.inbound(PHONE, "STOP"))[0] == 200
    forged = {"MessageSid": "SM" + "9" * 32, "From": PHONE, "To": "+15005550006",
              "Body": "START", "AccountSid": ACCOUNT}
    assert (await sms.post_inbound(forged))[0] == 400
    # Nor a real message of somebody else's number.
    other = sms.receive("+16265550999", "START")
    assert (await sms.post_inbound({**other, "From": PHONE}))[0] == 400
    assert (await sms.status_of(sub))[0] == "unsubscribed"
    # A signed STOP is honoured whatever Twilio can tell of it.
    fresh = await sms.subscription(phone="+16265550142")
    assert (await sms.post_inbound({**forged, "MessageSid": "SM" + "8" * 32,
                                    "From": "+16265550142", "Body": "STOP"}))[0] == 200
    assert (await sms.status_of(fresh))[0] == "unsubscribed"


async def test_while_twilio_cannot_say_when_a_stop_is_honoured_a_start_waits(
        sms: SmsEnv) -> None:
    sub = await sms.subscription()
    sms.twilio.lookup_error = 20500
    assert (await sms.inbound(PHONE, "STOP"))[0] == 200
    assert (await sms.status_of(sub))[0] == "unsubscribed"
    start = sms.receive(PHONE, "START")
    async with sms.http.post(f"{sms.api}/v1/twilio/inbound", data=start, headers={
            "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(
                f"{sms.api}/v1/twilio/inbound", start)}) as r:
        assert r.status == 503 and r.headers["Retry-After"] == "30"
    assert (await sms.status_of(sub))[0] == "unsubscribed"
    sms.twilio.lookup_error = None  # Twilio sends it again once it answers
    assert (await sms.post_inbound(start))[0] == 200
    assert await sms.status_of(sub) == ("active", None)


async def test_a_replayed_signed_start_does_not_undo_a_newer_stop(sms: SmsEnv) -> None:
    sub = await sms.subscription()
    assert (await sms.inbound(PHONE, "STOP", sid="SM" + "1" * 32))[0] == 200
    assert (await sms.inbound(PHONE, "START", sid="SM" + "2" * 32))[0] == 200
    assert (await sms.status_of(sub))[0] == "active"
    assert (await sms.inbound(PHONE, "STOP", sid="SM" + "3" * 32))[0] == 200
    # An attacker who captured the signed START sends it again: recognised, ignored.
    assert (await sms.inbound(PHONE, "START", sid="SM" + "2" * 32))[0] == 200
    assert await sms.status_of(sub) == ("unsubscribed", "sms STOP")
    async with sms.store.connect() as conn:
        assert await endpoints.opted_out(conn, "sms", PHONE) == "sms STOP"


@pytest.mark.parametrize(("content_type", "data", "status"), [
    ("multipart/form-data", b"--x\r\n", 415),   # no boundary
    ("application/json", b'{"Body": "STOP"}', 415),
    ("application/x-www-form-urlencoded", b"Body=\xff\xfe&From=%2B1", 400),
    ("text/plain", b"\xff\xfe", 415),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"Body=STOP", 415),
    ("application/x-www-form-urlencoded; charset=latin-1", b"Body=STOP\xe9", 415),
])
async def test_malformed_webhook_bodies_are_4xx_never_500(
        sms: SmsEnv, content_type: str, data: bytes, status: int) -> None:
    with capture_logs() as logs:
        for path in ("/v1/twilio/inbound", "/v1/twilio/status"):
            async with sms.http.post(f"{sms.api}{path}", data=data,
                                     headers={"Content-Type": content_type,
                                              "X-Twilio-Signature": "x"}) as r:
                assert r.status == status, (path, await r.text())
                assert r.content_type == "application/problem+json"
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


@pytest.mark.parametrize(("content_type", "data"), [
    ("multipart/form-data", b"--x\r\n"),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"Body=STOP"),
    ("application/x-www-form-urlencoded", b"Body=STOP&From=%2B16265550123"),
])
async def test_an_unsigned_webhook_is_refused_before_its_body_is_read(
        sms: SmsEnv, content_type: str, data: bytes) -> None:
    sub = await sms.subscription()
    with capture_logs() as logs:
        for path in ("/v1/twilio/inbound", "/v1/twilio/status"):
            async with sms.http.post(f"{sms.api}{path}", data=data,
                                     headers={"Content-Type": content_type}) as r:
                assert r.status == 403, (path, await r.text())
    assert [e["event"] for e in logs] == ["twilio_signature_rejected"] * 2
    assert (await sms.status_of(sub))[0] == "active"


async def _subscribe_as_another_tenant(sms: SmsEnv, phone: str) -> int:
    _, key = await add_tenant(sms.store, sms.clock.now())
    spec = {"name": "poached", "match": {"kinds": ["caiso.eea"]},
            "channel": {"type": "sms", "phone": phone}}
    async with sms.http.post(f"{sms.api}/v1/subscriptions", json=spec,
                             headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status


async def test_opt_outs_stick_whatever_the_subscription_said_before(sms: SmsEnv) -> None:
    """The recipient's STOP binds the number when the tenant had unsubscribed it already, and
    when no subscription names it yet: nobody subscribes it again (409, not 201)."""
    sub = await sms.subscription()
    async with sms.store.begin() as conn:
        await sub_store.set_status(conn, sub, "unsubscribed", sms.clock.now())
    assert await _subscribe_as_another_tenant(sms, PHONE) == 201  # a tenant's own: no bind
    assert (await sms.inbound(PHONE, "STOP"))[0] == 200
    assert await _subscribe_as_another_tenant(sms, PHONE) == 409
    stranger = "+16265550142"
    assert (await sms.inbound(stranger, "Stop."))[0] == 200
    assert await _subscribe_as_another_tenant(sms, stranger) == 409
    assert (await sms.inbound(stranger, "START"))[0] == 200
    assert await _subscribe_as_another_tenant(sms, stranger) == 201
