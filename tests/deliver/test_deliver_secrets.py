"""Conformance: no secret (webhook secret, Twilio auth token, SMTP password, API key) appears
in any log event, outcome, attempt row, ledger error, dead letter or config repr, whatever
each notifier goes through: success, refusal, timeout, bad credentials.

Logs are captured raw with `structlog.testing.capture_logs` (before the redaction processor),
so this checks that secrets never reach a log call at all, not that they get scrubbed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from capmon.api import api_app
from capmon.demo.twilio_calls import CallBehaviour
from capmon.demo.twilio_standin import Behaviour, TwilioStandIn
from consumers.deliver.deliverer import Deliverer
from consumers.notifiers.email import EmailConfig, EmailNotifier
from consumers.notifiers.sms import SmsConfig, SmsNotifier
from consumers.notifiers.voice import VoiceConfig, VoiceNotifier
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime
from monitor.store import Store
from tests.deliver.conftest import LINK_SECRET, PUBLIC_URL, make_deliverer, webhook_notifier
from tests.deliver.helpers import add_subscription, add_tenant, new_secret, notification
from tests.deliver.receivers import SmtpCapture, WebhookReceiver, free_port, start_smtp


def forms(secret: str) -> list[str]:
    """The secret as it could leak: whole, without its prefix, decoded to hex."""
    out = [secret, secret.removeprefix("whsec_")]
    if secret.startswith("whsec_"):
        out.append(base64.b64decode(secret.removeprefix("whsec_") + "==").hex())
    return out


ACCOUNT = "AC" + "1" * 32
TWILIO_TOKEN = "tw-token-" + uuid.uuid4().hex
WRONG_TOKEN = "tw-wrong-" + uuid.uuid4().hex


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandIn]:
    """Twilio, taking TWILIO_TOKEN for ACCOUNT (and refusing WRONG_TOKEN)."""
    standin = TwilioStandIn(ACCOUNT, TWILIO_TOKEN)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


async def everything_recorded(store: Store, keys: list[str], bus: MemoryBus) -> str:
    parts: list[str] = []
    async with store.connect() as conn:
        for key in keys:
            e = await ledger.get(conn, key)
            parts.append(repr(e))
            parts.append(repr(await ledger.attempts_for(conn, key)))
    dlq = bus.subscribe(["capmon.notifications.dlq.v1"], f"audit-{uuid.uuid4().hex}")
    await dlq.start()
    while (msg := await dlq.get(timeout=0.05)) is not None:
        parts.append(msg.record.value.decode())
    return "\n".join(parts)


async def submitted(d: Deliverer, store: Store, clock: ManualClock, tenant_id: str,
                    channel: str, targets: Iterable[str], *, secret: str | None = None,
                    previous_secret: str | None = None) -> list[str]:
    """A notification for each target, each to its own new subscription, through `d`: their
    keys."""
    keys = []
    for i, target in enumerate(targets):
        sub_id = await add_subscription(store, tenant_id, channel, target, clock.now(),
                                        secret=secret, previous_secret=previous_secret)
        n = notification(tenant_id, sub_id, channel, target, n=i)
        await d.submit(n)
        keys.append(n.key)
    return keys


def assert_clean(secret: str, *texts: str) -> None:
    for text in texts:
        for form in forms(secret):
            assert form not in text


async def test_webhook_secret_never_leaks(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock, logs: list[MutableMapping[str, Any]]) -> None:
    secret, old = new_secret(), new_secret()
    tenant_id, _ = await add_tenant(store, wall_clock.now())
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock, timeout_s=0.3)})
    urls = [receiver.url(p, [secret, old]) for p in ("/ok", "/fail", "/hang", "/gone")]
    urls.append(f"http://127.0.0.1:{free_port()}/refused")
    keys = await submitted(d, store, wall_clock, tenant_id, "webhook", urls, secret=secret,
                           previous_secret=old)
    assert len(logs) >= len(urls)
    recorded = await everything_recorded(store, keys, memory_bus)
    assert_clean(secret, repr(logs), recorded)
    assert_clean(old, repr(logs), recorded)


async def test_twilio_token_never_leaks(store: Store, memory_bus: MemoryBus,
                                        twilio: TwilioStandIn,
                                        logs: list[MutableMapping[str, Any]]) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))
    twilio.behaviours["+16265550001"] = Behaviour(error=21211)
    twilio.behaviours["+16265550002"] = Behaviour(error=20429)
    tenant_id, _ = await add_tenant(store, clock.now())
    keys = []
    for token, phones in ((TWILIO_TOKEN, ("+16265550000", "+16265550001", "+16265550002")),
                          (WRONG_TOKEN, ("+16265550003",))):
        config = SmsConfig(account_sid=ACCOUNT, auth_token=SecretStr(token),
                           public_url=PUBLIC_URL, messaging_service_sid="MG" + "2" * 32,
                           api_base_url=twilio.base)
        assert token not in repr(config)
        d = await make_deliverer(store, memory_bus, clock, {"sms": SmsNotifier(config)})
        keys += await submitted(d, store, clock, tenant_id, "sms", phones)
    recorded = await everything_recorded(store, keys, memory_bus)
    assert "20003" in recorded  # the wrong token was refused, and recorded as such
    assert_clean(TWILIO_TOKEN, repr(logs), recorded)
    assert_clean(WRONG_TOKEN, repr(logs), recorded)


async def test_twilio_token_never_leaks_from_calls(store: Store, memory_bus: MemoryBus,
                                                   twilio: TwilioStandIn,
                                                   logs: list[MutableMapping[str, Any]]) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))
    # The placed call never rings: its callbacks would go to the public URL.
    twilio.voice.behaviours["+16265550000"] = CallBehaviour(release=asyncio.Event())
    twilio.voice.behaviours["+16265550001"] = CallBehaviour(error=21217)
    tenant_id, _ = await add_tenant(store, clock.now())
    keys = []
    for token, phones in ((TWILIO_TOKEN, ("+16265550000", "+16265550001")),
                          (WRONG_TOKEN, ("+16265550003",))):
        config = VoiceConfig(account_sid=ACCOUNT, auth_token=SecretStr(token),
                             public_url=PUBLIC_URL, from_number="+15005550006",
                             api_base_url=twilio.base)
        assert token not in repr(config)
        d = await make_deliverer(store, memory_bus, clock, {"voice": VoiceNotifier(config)},
                                 voice_rate_per_s=100)
        keys += await submitted(d, store, clock, tenant_id, "voice", phones)
    recorded = await everything_recorded(store, keys, memory_bus)
    assert "20003" in recorded and "21217" in recorded
    assert_clean(TWILIO_TOKEN, repr(logs), recorded)
    assert_clean(WRONG_TOKEN, repr(logs), recorded)


async def test_smtp_password_never_leaks(store: Store, memory_bus: MemoryBus,
                                         logs: list[MutableMapping[str, Any]]) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))
    password = "smtp-pass-" + uuid.uuid4().hex
    wrong = "smtp-wrong-" + uuid.uuid4().hex

    def authenticator(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
                      auth_data: Any) -> AuthResult:
        return AuthResult(success=auth_data.password == password.encode(), handled=False)

    handler = SmtpCapture()
    ctl = start_smtp(handler, authenticator=authenticator, auth_require_tls=False)
    try:
        tenant_id, _ = await add_tenant(store, clock.now())
        keys = []
        for pw, addresses in ((password, ("a@cca.example", "b@reject.test", "c@busy.test")),
                              (wrong, ("d@cca.example",))):
            config = EmailConfig(host="127.0.0.1", port=ctl.port, sender="alerts@capmon.example",
                                 public_url=PUBLIC_URL, link_secret=LINK_SECRET,
                                 username="capmon", password=SecretStr(pw))
            assert pw not in repr(config)
            d = await make_deliverer(store, memory_bus, clock,
                                     {"email": EmailNotifier(config, clock)})
            keys += await submitted(d, store, clock, tenant_id, "email", addresses)
        assert len(handler.messages) == 1
        recorded = await everything_recorded(store, keys, memory_bus)
        assert "535" in recorded
        assert_clean(password, repr(logs), recorded)
        assert_clean(wrong, repr(logs), recorded)
        assert_clean(LINK_SECRET.get_secret_value(), repr(logs), recorded)
    finally:
        ctl.stop()


async def test_api_key_never_leaks(store: Store, memory_bus: MemoryBus,
                                   logs: list[MutableMapping[str, Any]]) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))
    _, key = await add_tenant(store, clock.now())
    rt = Runtime(settings=Settings(), clock=clock, bus=memory_bus, store=store)
    bodies = []
    async with TestClient(TestServer(api_app(rt))) as client:
        for auth in (key, key + "x", "cm_" + uuid.uuid4().hex):
            for path in (f"/v1/notifications/{'a' * 40}/replay", "/v1/twilio/status"):
                r = await client.post(path, headers={"Authorization": f"Bearer {auth}"})
                bodies.append(await r.text())
    assert any(json.loads(b)["status"] == 404 for b in bodies)
    assert_clean(key, repr(logs), "\n".join(bodies))
