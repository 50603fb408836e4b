"""An SMS attempt whose deliver process died mid-send (its claim taken over unsettled) is
checked against Twilio's message log before it is sent again: through the real deliver
stages, the real `twilio` client and the Twilio stand-in over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from capmon.demo.twilio_standin import Behaviour
from consumers.deliver.deliverer import Deliverer
from consumers.deliver.stages import Attempt, run_stages, send
from consumers.notifiers.sms import SmsConfig, SmsNotifier
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.metrics import REGISTRY
from monitor.notifications import Notification
from monitor.store import Store
from monitor.store.schema import sms_messages
from monitor.twilio_rest import TwilioHttp, rest_client
from tests.deliver.conftest import make_deliverer
from tests.deliver.helpers import notification
from tests.deliver.test_deliver_sms import ACCOUNT, PHONE, TOKEN, SmsEnv, _env


@pytest.fixture
async def sms(store: Store, memory_bus: MemoryBus) -> AsyncIterator[SmsEnv]:
    async for env in _env(store, memory_bus):
        yield env


# build_pipeline's stages: claim, check_endpoint, gate, in_slot(send, record), announce.
UP_TO_GATE = 3
UP_TO_SEND = -1  # the first three, then the send alone: killed before its record


def checks(result: str) -> float:
    return REGISTRY.get_sample_value("capmon_sms_fate_checks_total", {"result": result}) or 0.0


async def killed_after(sms: SmsEnv, n: Notification, stages: int) -> None:
    """The first deliver process runs `stages` of the pipeline, then is killed -9: no verdict,
    and its sender stops beating."""
    async with sms.store.begin() as conn:
        await ledger.beat(conn, sms.deliverer.deps.ledger.sender, sms.clock.now())
    d = sms.deliverer.deps
    pipeline = (sms.deliverer.stages[:stages] if stages != UP_TO_SEND
                else [*sms.deliverer.stages[:UP_TO_GATE], send(d)])
    await run_stages(pipeline, Attempt(notification=n, now=sms.clock.now(), from_bus=True))
    assert (await sms.entry(n.key)).state == "sending"


async def takeover(sms: SmsEnv) -> Deliverer:
    """Another deliver process, once the dead one's beat is older than `takeover_s`."""
    config = SmsConfig.from_settings(sms.settings)
    assert config is not None
    second = await make_deliverer(sms.store, sms.bus, sms.clock, {"sms": SmsNotifier(config)})
    sms.clock.advance(4)
    assert await second.run_due() == 1
    return second


async def messages(sms: SmsEnv) -> list[tuple[str, int, str]]:
    async with sms.store.connect() as conn:
        rows = await conn.execute(sa.select(sms_messages.c.sid, sms_messages.c.attempt_no,
                                            sms_messages.c.status)
                                  .order_by(sms_messages.c.attempt_no))
        return [(r[0], r[1], r[2]) for r in rows]


async def test_accepted_before_the_kill_is_found_in_the_log_and_not_sent_again(
        sms: SmsEnv) -> None:
    # Its status callbacks never reached capmon: only Twilio's log knows it went out.
    sms.twilio.behaviours[PHONE] = Behaviour(callbacks=False)
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    found = checks("found")
    await killed_after(sms, n, UP_TO_SEND)
    [sid] = sms.twilio.sent

    await takeover(sms)

    assert len(sms.twilio.requests) == 1  # one text
    [read] = sms.twilio.reads
    assert read["To"] == PHONE and read["DateSent>"] == "2022-09-06"
    e = await sms.entry(n.key)
    assert e.state == "delivered" and e.attempt_count == 1
    assert await messages(sms) == [(sid, 1, "delivered")]
    async with sms.store.connect() as conn:
        [a] = await ledger.attempts_for(conn, n.key)
    assert a["outcome"] == "delivered" and a["attempt_no"] == 1
    assert checks("found") == found + 1


async def test_a_failed_message_found_in_the_log_fails_the_attempt(sms: SmsEnv) -> None:
    sms.twilio.behaviours[PHONE] = Behaviour(statuses=("queued", "sent", "undelivered"),
                                             error_code=30003, callbacks=False)
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    await killed_after(sms, n, UP_TO_SEND)
    [sid] = sms.twilio.sent

    await takeover(sms)

    assert len(sms.twilio.requests) == 1
    e = await sms.entry(n.key)
    assert e.state == "failed" and "30003" in (e.last_error or "")
    assert e.next_attempt_at is not None  # retried on the schedule, as its callback would
    assert await messages(sms) == [(sid, 1, "undelivered")]


async def test_a_callback_that_arrived_after_the_kill_settles_it_without_asking(
        sms: SmsEnv) -> None:
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    found = checks("found")
    await killed_after(sms, n, UP_TO_SEND)
    await sms.twilio.wait_callbacks(3)
    [sid] = sms.twilio.sent

    await takeover(sms)

    assert len(sms.twilio.requests) == 1 and sms.twilio.reads == []
    assert (await sms.entry(n.key)).state == "delivered"
    assert await messages(sms) == [(sid, 1, "delivered")]
    assert checks("found") == found + 1


async def test_killed_before_the_send_it_is_sent_once(sms: SmsEnv) -> None:
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    not_found = checks("not_found")
    await killed_after(sms, n, UP_TO_GATE)
    assert sms.twilio.requests == []

    await takeover(sms)

    assert len(sms.twilio.requests) == 1 and len(sms.twilio.reads) == 1
    assert (await sms.entry(n.key)).state == "delivered"
    [(sid, attempt, _)] = await messages(sms)
    assert sid in sms.twilio.sent and attempt == 1
    assert checks("not_found") == not_found + 1


async def test_when_the_log_is_unavailable_the_text_is_sent_anyway(sms: SmsEnv) -> None:
    """A missed EEA costs more than a duplicate: Twilio not answering the log read must not
    hold the text back."""
    sms.twilio.behaviours[PHONE] = Behaviour(callbacks=False)
    sms.twilio.list_error = 20500
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    unavailable = checks("unavailable")
    await killed_after(sms, n, UP_TO_SEND)

    await takeover(sms)

    assert len(sms.twilio.reads) == 1
    assert len(sms.twilio.requests) == 2  # the duplicate the check could not rule out
    _, second = sms.twilio.sent
    assert (await sms.entry(n.key)).state == "delivered"
    assert [sid for sid, _, _ in await messages(sms)] == [second]
    assert checks("unavailable") == unavailable + 1


async def test_an_earlier_attempts_message_in_the_log_is_not_this_attempts(
        sms: SmsEnv) -> None:
    """A replayed notification's first text carries the same link: it does not count as the
    replay's, which was killed before its send."""
    sms.twilio.behaviours[PHONE] = Behaviour(callbacks=False)
    sub_id = await sms.subscription()
    n = notification(sms.tenant_id, sub_id, "sms", PHONE)
    await sms.deliverer.submit(n)
    assert (await sms.entry(n.key)).state == "delivered"
    assert sms.twilio.reads == []  # a first send never reads the log
    async with sms.store.begin() as conn:
        assert await ledger.reopen(conn, n.key, sms.clock.now())
    not_found = checks("not_found")
    await killed_after(sms, n, UP_TO_GATE)

    await takeover(sms)

    assert len(sms.twilio.reads) == 1 and len(sms.twilio.requests) == 2
    first, second = sms.twilio.sent
    # No callbacks reached capmon: the ledger knows what each 201 said.
    assert await messages(sms) == [(first, 1, "accepted"), (second, 2, "accepted")]
    assert checks("not_found") == not_found + 1


async def test_the_log_pages_as_twilio_does_for_the_real_client(sms: SmsEnv) -> None:
    sms.twilio.behaviours[PHONE] = Behaviour(callbacks=False)
    sub_id = await sms.subscription()
    for i in range(5):
        sms.clock.advance(1)
        await sms.deliverer.submit(notification(sms.tenant_id, sub_id, "sms", PHONE, n=i))
    sms.twilio.receive(PHONE, "+15005550006", "STOP", sms.clock.now())
    http = TwilioHttp(5.0)
    try:
        client = rest_client(ACCOUNT, SecretStr(TOKEN), http, sms.twilio.base)
        listed = await client.messages.list_async(to=PHONE, page_size=2)
    finally:
        await http.close()
    assert [m.sid for m in listed] == list(reversed(sms.twilio.sent))  # newest first
    assert [r.get("Page") for r in sms.twilio.reads] == [None, "1", "2"]
    assert all(r.get("PageToken", "PA").startswith("PA") for r in sms.twilio.reads)
    assert all(m.direction == "outbound-api" and m.date_sent is not None for m in listed)
