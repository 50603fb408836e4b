"""Voice calls through the real `twilio` client against the local stand-in of Twilio's Calls
API: the stand-in rings, answers (a person pressing keys, or a machine) or reports busy, and
posts its signed status, answering-machine and keypress callbacks to capmon's real API."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import sqlalchemy as sa

from capmon.demo.twilio_calls import CallBehaviour
from capmon.demo.twilio_standin import TwilioStandIn
from consumers.deliver.deliverer import Deliverer, scheduler_loop
from consumers.notifiers.voice import VoiceConfig, VoiceNotifier
from monitor import ledger, voice_script
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.ledger import acks
from monitor.metrics import VOICE_CALLS, VOICE_KEYS
from monitor.notifications import Notification, VoiceChannel
from monitor.store import Store, endpoints
from monitor.store.schema import subscriptions, voice_calls
from tests.deliver.conftest import make_deliverer
from tests.deliver.helpers import add_subscription, add_tenant, dr_event, notification
from tests.deliver.twilio_api import twilio_api

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-" + uuid.uuid4().hex
FROM = "+15005550006"
PHONE, OTHER = "+16265550123", "+16265550188"


@dataclass
class VoiceEnv:
    store: Store
    bus: MemoryBus
    clock: ManualClock
    api: str
    twilio: TwilioStandIn
    deliverer: Deliverer
    tenant_id: str
    http: aiohttp.ClientSession

    async def subscription(self, phone: str = PHONE, **channel: object) -> str:
        # Emergency DR events are acknowledgeable at the default ack_severity.
        sub_id = await add_subscription(self.store, self.tenant_id, "voice", phone,
                                        self.clock.now())
        if channel:
            async with self.store.begin() as conn:
                spec = (await conn.execute(sa.select(subscriptions.c.spec).where(
                    subscriptions.c.id == sub_id))).scalar_one()
                spec["channel"].update(channel)
                await conn.execute(subscriptions.update().where(subscriptions.c.id == sub_id)
                                   .values(spec=spec))
        return sub_id

    def alert(self, sub_id: str, phone: str = PHONE, n: int = 0, **channel: int) -> Notification:
        return notification(self.tenant_id, sub_id, "voice", phone, condition=dr_event(), n=n,
                            acknowledgeable=True, voice=VoiceChannel(phone=phone, **channel))

    async def entry(self, key: str) -> ledger.LedgerEntry:
        async with self.store.connect() as conn:
            e = await ledger.get(conn, key)
        assert e is not None
        return e

    async def ack(self, key: str) -> acks.Ack | None:
        async with self.store.connect() as conn:
            return (await acks.acks_of(conn, [key])).get(key)

    async def calls(self) -> list[sa.Row[tuple[str, str, int, str, str | None]]]:
        async with self.store.connect() as conn:
            c = voice_calls.c
            return list(await conn.execute(
                sa.select(c.sid, c.notification_key, c.attempt_no, c.status, c.answered_by)
                .order_by(c.attempt_no, c.created_at)))

    async def post(self, path: str, params: dict[str, str],
                   signature: str | None = None) -> tuple[int, str, str]:
        url = f"{self.api}{path}"
        sig = signature if signature is not None else self.twilio.signature(url, params)
        async with self.http.post(url, data=params, headers={"X-Twilio-Signature": sig}) as r:
            return r.status, r.content_type, await r.text()


@pytest.fixture
async def voice(store: Store, memory_bus: MemoryBus) -> AsyncIterator[VoiceEnv]:
    clock = ManualClock(datetime(2022, 9, 6, 20, 5, tzinfo=UTC))
    async with twilio_api(store, memory_bus, clock, ACCOUNT, TOKEN, from_number=FROM) as t:
        config = VoiceConfig.from_settings(t.settings)
        assert config is not None
        # Twilio's one call a second would defer the second call of a test on the manual
        # clock.
        deliverer = await make_deliverer(store, memory_bus, clock,
                                         {"voice": VoiceNotifier(config)}, voice_rate_per_s=100)
        tenant_id, _ = await add_tenant(store, clock.now())
        yield VoiceEnv(store, memory_bus, clock, t.api, t.twilio, deliverer, tenant_id, t.http)


async def test_the_call_reads_the_alert_twice_and_1_acknowledges(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(digits=("1",))
    answered = VOICE_CALLS.labels(outcome="answered")._value.get()
    sub_id = await voice.subscription()
    n = voice.alert(sub_id)
    await voice.deliverer.submit(n)

    [form] = voice.twilio.voice.requests
    assert form["To"] == PHONE and form["From"] == FROM
    assert form["StatusCallback"] == f"{voice.api}/v1/twilio/voice/status?key={n.key}&attempt=1"
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == "DetectMessageEnd" and form["AsyncAmd"] == "true"
    assert form["AsyncAmdStatusCallback"] == f"{voice.api}/v1/twilio/voice/amd?key={n.key}"
    twiml = ET.fromstring(form["Twiml"])
    [gather, closing] = list(twiml)
    assert gather.tag == "Gather" and gather.get("numDigits") == "1"
    assert gather.get("action") == f"{voice.api}/v1/twilio/voice/gather?key={n.key}"
    says = [s.text or "" for s in gather if s.tag == "Say"]
    text = voice_script.spoken(n)
    assert "SCE BIP" in text and "Areas: " in text
    assert says == [text, "Press 1 to acknowledge. Press 9 to stop these calls.",
                    f"Again. {text}", "Press 1 to acknowledge. Press 9 to stop these calls."]
    assert closing.tag == "Say" and closing.text == voice_script.CLOSING
    assert (await voice.entry(n.key)).state == "delivered"  # Twilio placed the call

    await voice.twilio.voice.wait_ended(1)
    [(sid, played)] = voice.twilio.voice.played.items()
    assert played.keys == [("1", 200)] and played.said[-1] == "Acknowledged. Thank you."
    ack = await voice.ack(n.key)
    assert ack is not None and ack.by == PHONE and ack.via == acks.Via.VOICE
    [call] = await voice.calls()
    assert (call.sid, call.notification_key, call.status, call.answered_by) == (
        sid, n.key, "completed", "human")
    assert [(k, w, a) for _s, k, w, a in voice.twilio.voice.callbacks] == [
        ("status", "initiated", 204), ("status", "ringing", 204),
        ("status", "in-progress", 204), ("amd", "human", 204), ("gather", "1", 200),
        ("status", "completed", 204)]
    assert VOICE_CALLS.labels(outcome="answered")._value.get() == answered + 1
    assert (await voice.entry(n.key)).state == "delivered"


async def test_the_acknowledgement_is_the_keypress_not_the_answer(voice: VoiceEnv) -> None:
    press = asyncio.Event()
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(digits=("1",), press=press)
    n = voice.alert(await voice.subscription())
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_for(lambda c: ("amd", "human") in [(k, w) for _s, k, w, _a in c])
    [call] = await voice.calls()
    assert (call.status, call.answered_by) == ("in-progress", "human")
    assert await voice.ack(n.key) is None  # answered, still listening
    press.set()
    await voice.twilio.voice.wait_ended(1)
    ack = await voice.ack(n.key)
    assert ack is not None and ack.via == acks.Via.VOICE


async def test_another_key_hears_the_message_again_then_1_acknowledges(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(digits=("5", "1"))
    repeated = VOICE_KEYS.labels(action="repeated")._value.get()
    n = voice.alert(await voice.subscription())
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_ended(1)
    [played] = voice.twilio.voice.played.values()
    assert played.keys == [("5", 200), ("1", 200)]
    # The call's message twice with its keys, then once more with its keys.
    assert played.said.count(voice_script.spoken(n)) == 2
    assert (await voice.ack(n.key)) is not None
    assert VOICE_KEYS.labels(action="repeated")._value.get() == repeated + 1


async def test_an_acknowledged_alert_says_by_whom(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(digits=("1",))
    n = voice.alert(await voice.subscription())
    async with voice.store.begin() as conn:
        await ledger.admit(conn, [n], voice.clock.now())
        await acks.acknowledge(conn, n.key, "SCE desk", acks.Via.API, voice.clock.now())
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_ended(1)
    [played] = voice.twilio.voice.played.values()
    assert played.said[-1] == "This alert was already acknowledged by SCE desk, by api. Goodbye."
    ack = await voice.ack(n.key)
    assert ack is not None and ack.by == "SCE desk"


async def test_an_alert_that_takes_no_acknowledgement_says_so(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(digits=("1",))
    sub_id = await voice.subscription()
    n = notification(voice.tenant_id, sub_id, "voice", PHONE)  # critical, not acknowledgeable
    await voice.deliverer.submit(n)
    [form] = voice.twilio.voice.requests
    assert "Press 1" not in form["Twiml"] and "Press 9 to stop these calls." in form["Twiml"]
    await voice.twilio.voice.wait_ended(1)
    [played] = voice.twilio.voice.played.values()
    assert played.said[-1] == "This alert does not take acknowledgements. Goodbye."
    assert await voice.ack(n.key) is None


@pytest.mark.parametrize("path", ["/v1/twilio/voice/status", "/v1/twilio/voice/gather",
                                  "/v1/twilio/voice/amd"])
@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
async def test_forged_callbacks_are_refused(voice: VoiceEnv, path: str, signature: str) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour()
    n = voice.alert(await voice.subscription())
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_ended(1)
    [sid] = voice.twilio.voice.calls
    params = {"CallSid": sid, "CallStatus": "busy", "Digits": "1",
              "AnsweredBy": "machine_end_beep", "AccountSid": ACCOUNT}
    status, content_type, _ = await voice.post(f"{path}?key={n.key}&attempt=1", params,
                                               signature=signature)
    assert status == 403 and content_type == "application/problem+json"
    assert (await voice.entry(n.key)).state == "delivered"
    assert await voice.ack(n.key) is None


async def test_a_keypress_from_another_call_is_refused(voice: VoiceEnv) -> None:
    a = voice.alert(await voice.subscription(PHONE), PHONE)
    b = voice.alert(await voice.subscription(OTHER), OTHER)
    await voice.deliverer.submit(a)
    await voice.deliverer.submit(b)
    await voice.twilio.voice.wait_ended(2)
    by_key = {r.notification_key: r.sid for r in await voice.calls()}
    params = {"CallSid": by_key[b.key], "Digits": "1", "To": OTHER, "From": FROM,
              "AccountSid": ACCOUNT}
    status, content_type, body = await voice.post(f"/v1/twilio/voice/gather?key={a.key}",
                                                  params)
    assert status == 403 and content_type == "application/problem+json"
    assert "CallSid" in body and await voice.ack(a.key) is None
    # Its own call's keypress (a signed one, replayed here) is taken.
    params["CallSid"] = by_key[a.key]
    status, content_type, body = await voice.post(f"/v1/twilio/voice/gather?key={a.key}",
                                                  params)
    assert status == 200 and content_type == "application/xml"
    assert "Acknowledged. Thank you." in body
    ack = await voice.ack(a.key)
    assert ack is not None and ack.by == PHONE


async def test_busy_then_answered_is_two_calls_and_delivered(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(answer="busy")
    busy = VOICE_CALLS.labels(outcome="busy")._value.get()
    n = voice.alert(await voice.subscription())
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_ended(1)
    e = await voice.entry(n.key)
    assert e.state == "failed" and "busy" in (e.last_error or "")
    assert e.next_attempt_at == voice.clock.now() + timedelta(minutes=2)
    assert VOICE_CALLS.labels(outcome="busy")._value.get() == busy + 1

    voice.twilio.voice.behaviours[PHONE] = CallBehaviour()
    voice.clock.advance(119)
    assert await voice.deliverer.run_due() == 0  # not before the retry interval
    voice.clock.advance(1)
    assert await voice.deliverer.run_due() == 1
    await voice.twilio.voice.wait_ended(2)
    e = await voice.entry(n.key)
    assert e.state == "delivered" and e.attempt_count == 2
    assert [(c.attempt_no, c.status) for c in await voice.calls()] == [
        (1, "busy"), (2, "completed")]
    second = voice.twilio.voice.requests[1]
    assert second["StatusCallback"].endswith(f"key={n.key}&attempt=2")


async def test_no_answer_beyond_the_retries_is_dead(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(answer="no-answer")
    dlq = voice.bus.subscribe(["capmon.notifications.dlq.v1"], "test-dlq")
    await dlq.start()
    sub_id = await voice.subscription(retries=1, retry_interval="PT5M")
    n = voice.alert(sub_id, retries=1, retry_interval_s=300)
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_ended(1)
    e = await voice.entry(n.key)
    assert e.state == "failed" and e.next_attempt_at == voice.clock.now() + timedelta(minutes=5)
    voice.clock.advance(300)
    assert await voice.deliverer.run_due() == 1
    await voice.twilio.voice.wait_ended(2)
    e = await voice.entry(n.key)
    assert e.state == "dead" and e.attempt_count == 2 and e.next_attempt_at is None
    assert "no_answer: call no-answer" in (e.last_error or "")
    msg = await dlq.get(timeout=5)
    assert msg is not None and msg.key == n.key


async def test_an_answering_machine_is_left_the_message_once(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(answer="machine", digits=("1",))
    left = VOICE_CALLS.labels(outcome="voicemail")._value.get()
    n = voice.alert(await voice.subscription())
    await voice.deliverer.submit(n)
    await voice.twilio.voice.wait_ended(1)
    [played] = voice.twilio.voice.played.values()
    assert played.answered_by == "machine_end_beep" and played.keys == []
    assert played.said == [voice_script.spoken(n),
                           "This was an automated call from capmon. Goodbye."]
    [call] = await voice.calls()
    assert (call.status, call.answered_by) == ("completed", "machine_end_beep")
    assert (await voice.entry(n.key)).state == "delivered"
    assert await voice.ack(n.key) is None
    assert VOICE_CALLS.labels(outcome="voicemail")._value.get() == left + 1


async def test_9_opts_the_number_out_of_calls(voice: VoiceEnv) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(digits=("9",))
    sub_id = await voice.subscription()
    await voice.deliverer.submit(voice.alert(sub_id))
    await voice.twilio.voice.wait_ended(1)
    [played] = voice.twilio.voice.played.values()
    assert played.said[-1] == "You will get no more capmon calls at this number. Goodbye."
    async with voice.store.connect() as conn:
        status, reason = (await conn.execute(
            sa.select(subscriptions.c.status, subscriptions.c.status_reason)
            .where(subscriptions.c.id == sub_id))).one()
        assert await endpoints.opted_out(conn, "voice", PHONE) == "voice 9"
        assert await endpoints.opted_out(conn, "sms", PHONE) is None  # calls only
    assert (status, reason) == ("unsubscribed", "voice 9")
    # The next alert to that number is withheld, not called.
    later = voice.alert(sub_id, n=1)
    await voice.deliverer.submit(later)
    assert (await voice.entry(later.key)).state == "suppressed"
    assert len(voice.twilio.voice.requests) == 1


@pytest.mark.parametrize(("code", "state", "sub_status"), [
    (21217, "dead", "disabled"),   # a number Twilio cannot dial
    (21215, "dead", "active"),     # the account may not call there: its settings, not the number
    (20429, "failed", "active"),   # too many requests: tried again later
])
async def test_twilio_refusing_the_call(voice: VoiceEnv, code: int, state: str,
                                        sub_status: str) -> None:
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(error=code)
    sub_id = await voice.subscription()
    n = voice.alert(sub_id)
    await voice.deliverer.submit(n)
    e = await voice.entry(n.key)
    assert e.state == state and str(code) in (e.last_error or "")
    async with voice.store.connect() as conn:
        [attempt] = await ledger.attempts_for(conn, n.key)
        status = (await conn.execute(sa.select(subscriptions.c.status).where(
            subscriptions.c.id == sub_id))).scalar_one()
    assert attempt["provider_error"] == str(code) and status == sub_status
    assert await voice.calls() == []


async def test_a_call_rescheduled_by_its_callback_wakes_the_scheduler_beside_it(
        voice: VoiceEnv) -> None:
    # The busy call's retry is scheduled by the API's status callback, not by deliver: a
    # scheduler in the same process is told (`ledger.on_rescheduled`) and calls again at
    # the retry time, though its own interval is an hour.
    voice.twilio.voice.behaviours[PHONE] = CallBehaviour(answer="busy")
    deps = voice.deliverer.deps
    hourly = Deliverer(dataclasses.replace(deps, settings=deps.settings.model_copy(
        update={"scheduler_interval_s": 3600.0})))
    unlisten = ledger.on_rescheduled(hourly.expect)
    stop = asyncio.Event()
    scheduler = asyncio.create_task(scheduler_loop(hourly, stop))
    try:
        n = voice.alert(await voice.subscription())
        await hourly.submit(n)
        await voice.twilio.voice.wait_ended(1)
        retry_at = voice.clock.now() + timedelta(minutes=2)
        assert hourly.expected == retry_at
        voice.twilio.voice.behaviours[PHONE] = CallBehaviour()

        async def parked_until_the_retry() -> None:
            # The manual clock's sleepers have no event to wait on: yield until the
            # scheduler's pass after the wake has parked it at the retry time.
            while voice.clock.next_deadline() != retry_at:  # noqa: ASYNC110
                await asyncio.sleep(0)

        await asyncio.wait_for(parked_until_the_retry(), 5)
        voice.clock.advance(120)
        await voice.twilio.voice.wait_ended(2)
        e = await voice.entry(n.key)
        assert e.state == "delivered" and e.attempt_count == 2
    finally:
        unlisten()
        stop.set()
        voice.clock.advance(3600)
        await scheduler
