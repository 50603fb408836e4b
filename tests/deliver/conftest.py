"""Fixtures for deliver tests: a wall-time ManualClock, a webhook receiver, an SMTP server,
and a deliverer wired to them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from consumers.deliver.deliverer import Deliverer
from consumers.deliver.ledger import DeliverLedger
from consumers.deliver.limits import Limits
from consumers.deliver.stages import Deps
from consumers.notifiers.base import Notifier
from consumers.notifiers.email import EmailConfig, EmailNotifier
from consumers.notifiers.webhook import WebhookConfig, WebhookNotifier
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import DeliverSettings
from monitor.store import Store
from tests.deliver.receivers import SmtpCapture, WebhookReceiver, start_smtp

LINK_SECRET = SecretStr("link-secret-for-tests-0123456789")
PUBLIC_URL = "https://alerts.cleanpoweralliance.org"


@pytest.fixture
def wall_clock() -> ManualClock:
    # Standard Webhooks receivers reject timestamps 5 minutes away from their wall clock, so
    # webhook tests start the manual clock at the real time (and then move it by hand).
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpCapture, int]]:
    handler = SmtpCapture()
    ctl = start_smtp(handler)
    try:
        yield handler, ctl.port
    finally:
        ctl.stop()


@pytest.fixture
async def memory_bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def webhook_notifier(clock: ManualClock, timeout_s: float = 0.5, **kw: object) -> WebhookNotifier:
    cfg = WebhookConfig(timeout_s=timeout_s, allow_hosts=("127.0.0.1",), allow_http=True)
    if kw:
        cfg = WebhookConfig(timeout_s=timeout_s, **kw)  # type: ignore[arg-type]
    return WebhookNotifier(cfg, clock)


def email_notifier(clock: ManualClock, port: int) -> EmailNotifier:
    return EmailNotifier(EmailConfig(host="127.0.0.1", port=port,
                                     sender="capmon <alerts@capmon.example>",
                                     public_url=PUBLIC_URL, link_secret=LINK_SECRET), clock)


_OPEN: list[Notifier] = []


@pytest.fixture(autouse=True)
async def _close_notifiers() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().close()


async def make_deliverer(store: Store, bus: MemoryBus, clock: ManualClock,
                         notifiers: dict[str, Notifier], **settings: object) -> Deliverer:
    # A ManualClock never moves by itself, so tests defer rate-limited sends to the store
    # instead of sleeping on the clock in-process.
    settings.setdefault("max_rate_wait_s", 0)
    s = DeliverSettings.model_validate(settings)
    for n in notifiers.values():
        await n.start()
        _OPEN.append(n)
    return Deliverer(Deps(settings=s, store=store, bus=bus, clock=clock, notifiers=notifiers,
                          limits=Limits(s, clock),
                          ledger=DeliverLedger(store, clock, s.claim_lease_s),
                          rng=random.Random(7)))
