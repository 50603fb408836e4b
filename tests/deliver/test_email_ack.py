"""Acknowledging from the email: the mail a real SMTP server (aiosmtpd) receives carries a
signed link; GET of it shows the alert and changes nothing, POST acknowledges by the address
the mail went to, via email; forged, moved, expired and refused links change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from capmon.api import api_app
from consumers.notifiers.email import build_message
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import ApiSettings, Settings
from monitor.events import Severity
from monitor.ledger import acks
from monitor.links import ACK_TOKEN_DAYS, ack_token, unsubscribe_token
from monitor.notifications import Notification
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.schema import subscriptions
from tests.deliver.conftest import LINK_SECRET, PUBLIC_URL, email_notifier, make_deliverer
from tests.deliver.helpers import add_subscription, add_tenant, dr_event, eea3, notification
from tests.deliver.receivers import SmtpCapture

DESK = "desk@cca.example"
_LINK = re.compile(re.escape(PUBLIC_URL) + r"(/v1/ack/[A-Za-z0-9._-]+)")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2022, 9, 6, 20, 5, tzinfo=UTC))


@pytest.fixture
async def api(store: Store, memory_bus: MemoryBus, clock: ManualClock
              ) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(api=ApiSettings(public_url=PUBLIC_URL, link_secret=LINK_SECRET))
    app = api_app(Runtime(settings=settings, clock=clock, bus=memory_bus, store=store))
    async with TestClient(TestServer(app)) as client:
        yield client


def ackable(tenant_id: str, sub_id: str, n: int = 0, to: str = DESK) -> Notification:
    """An SCE BIP event (emergency, the default ack_severity) for the desk, as decide marks it."""
    return notification(tenant_id, sub_id, "email", to, condition=dr_event(),
                        n=n).model_copy(update={"acknowledgeable": True})


Mail = Callable[[Notification], Awaitable[EmailMessage]]


@pytest.fixture
def mail(store: Store, memory_bus: MemoryBus, clock: ManualClock,
         smtp: tuple[SmtpCapture, int]) -> Mail:
    """A notification delivered through the email notifier to the SMTP server: the mail it
    received."""
    handler, port = smtp

    async def delivered(n: Notification) -> EmailMessage:
        d = await make_deliverer(store, memory_bus, clock,
                                 {"email": email_notifier(clock, port)})
        before = len(handler.messages)
        await d.submit(n)
        assert len(handler.messages) == before + 1
        return handler.messages[-1]
    return delivered


@dataclass(frozen=True)
class Desk:
    """A tenant and its desk's email subscription."""

    store: Store
    tenant_id: str
    api_key: str
    sub_id: str

    def alert(self, n: int = 0) -> Notification:
        return ackable(self.tenant_id, self.sub_id, n)

    async def move(self, target: str) -> None:
        """The tenant points the subscription elsewhere (a PUT)."""
        async with self.store.begin() as conn:
            await conn.execute(sa.update(subscriptions)
                               .where(subscriptions.c.id == self.sub_id).values(target=target))


@pytest.fixture
async def desk(store: Store, clock: ManualClock) -> Desk:
    tenant_id, api_key = await add_tenant(store, clock.now())
    return Desk(store, tenant_id, api_key,
                await add_subscription(store, tenant_id, "email", DESK, clock.now()))


def links_in(mail: EmailMessage) -> list[str]:
    """The acknowledgement link of each part, plain then HTML, as a path on the API."""
    paths = []
    for kind in ("plain", "html"):
        part = mail.get_body((kind,))
        assert part is not None
        found = _LINK.findall(part.get_content())
        assert len(set(found)) == 1, (kind, found)
        paths.append(found[0])
    return paths


async def ack_row(store: Store, key: str) -> acks.Ack | None:
    async with store.connect() as conn:
        return (await acks.acks_of(conn, [key])).get(key)


async def test_the_link_in_the_mail_acknowledges_on_post_never_on_get(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail) -> None:
    n = desk.alert()
    mailed = await mail(n)
    plain, html = links_in(mailed)
    assert plain == html
    assert "I have it (acknowledge): " + PUBLIC_URL + plain in \
        mailed.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    for _ in range(2):  # a mail scanner, then a link preview
        r = await api.get(plain)
        page = await r.text()
        assert r.status == 200, page
        assert "SCE BIP BIP-15 event" in page  # the notification's wording
        assert f"<form method=\"post\" action=\"{plain}\">" in page and "I have it" in page
        assert DESK in page
        assert "style-src 'unsafe-inline'" in r.headers["Content-Security-Policy"]
        assert r.headers["Referrer-Policy"] == "no-referrer"
    assert await ack_row(store, n.key) is None

    clock.advance(180)
    r = await api.post(plain)
    assert r.status == 200 and "Acknowledged" in await r.text()
    got = await ack_row(store, n.key)
    assert got == acks.Ack(n.key, DESK, acks.Via.EMAIL, clock.now())

    # Clicked twice (or the button posted twice): the same answer, the same record.
    clock.advance(60)
    r = await api.post(plain)
    assert r.status == 200
    assert "You acknowledged this alert at Tue Sep 6 2022, 13:08 PDT" in await r.text()
    r = await api.get(plain)
    assert r.status == 200 and "You acknowledged" in await r.text()
    assert "<form" not in await r.text()
    assert await ack_row(store, n.key) == got

    shown = await (await api.get(f"/v1/notifications/{n.key}",
                                 headers={"Authorization": f"Bearer {desk.api_key}"})).json()
    assert shown["acknowledgement"] == {"by": DESK, "via": "email",
                                        "at": "2022-09-06T20:08:00Z"}
    detail = await (await api.get(f"/n/{n.key[:12]}")).text()
    assert "Acknowledged</strong> (email) Tue Sep 6 2022, 13:08 PDT" in detail
    assert DESK not in detail  # a public page: how and when, never who


async def test_somebody_elses_acknowledgement_stands_and_is_named(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail) -> None:
    n = desk.alert()
    [link, _] = links_in(await mail(n))
    r = await api.post(f"/v1/notifications/{n.key}/ack", json={"by": "DCE load management"},
                       headers={"Authorization": f"Bearer {desk.api_key}"})
    assert r.status == 200
    for method, status in ((api.get, 200), (api.post, 409)):
        r = await method(link)
        text = await r.text()
        assert r.status == status, text
        assert "<form" not in text
        assert "DCE load management acknowledged this alert (api) at Tue Sep 6 2022, " \
               "13:05 PDT" in text
    assert (await ack_row(store, n.key)).by == "DCE load management"  # type: ignore[union-attr]


@pytest.mark.parametrize("forgery", ["bad-mac", "other-key", "other-address", "unsubscribe",
                                     "no-mac", "undated", "garbage"])
async def test_a_tampered_or_foreign_link_is_refused_and_changes_nothing(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail, forgery: str) -> None:
    n, other = desk.alert(), desk.alert(n=1)
    async with store.begin() as conn:
        await ledger.admit(conn, [other], clock.now())
    [link, _] = links_in(await mail(n))
    token = link.rpartition("/")[2]
    key, day, mac = token.split(".")
    path = "/v1/ack/" + {
        "bad-mac": f"{key}.{day}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        "other-key": f"{other.key}.{day}.{mac}",
        "other-address": ack_token(LINK_SECRET, n.key, "intruder@cca.example", clock.now()),
        "unsubscribe": unsubscribe_token(LINK_SECRET, desk.sub_id, DESK, clock.now()),
        "no-mac": f"{key}.{day}",
        "undated": f"{key}.{mac}",
        "garbage": "not-a-token",
    }[forgery]
    for method in (api.get, api.post):
        r = await method(path)
        text = await r.text()
        assert r.status == 404, text
        assert r.content_type == "text/html" and "invalid acknowledgement link" in text
    assert await ack_row(store, n.key) is None and await ack_row(store, other.key) is None


async def test_an_expired_link_is_a_clear_410_and_changes_nothing(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail) -> None:
    n = desk.alert()
    [link, _] = links_in(await mail(n))
    clock.advance(timedelta(days=ACK_TOKEN_DAYS).total_seconds())
    assert (await api.get(link)).status == 200  # the last day it is good
    clock.advance(timedelta(days=1).total_seconds())
    for method in (api.get, api.post):
        r = await method(link)
        text = await r.text()
        assert r.status == 410, text
        assert f"good for {ACK_TOKEN_DAYS} days" in text and "portal" in text
    assert await ack_row(store, n.key) is None


async def test_a_notification_below_ack_severity_has_no_link_and_is_not_acknowledged(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail) -> None:
    rmo = eea3().model_copy(update={"severity": Severity.WARNING})  # below emergency
    n = notification(desk.tenant_id, desk.sub_id, "email", DESK, condition=rmo)
    mailed = await mail(n)
    for kind in ("plain", "html"):
        body = mailed.get_body((kind,))
        assert body is not None and "/v1/ack/" not in body.get_content()
        assert "I have it" not in body.get_content()
    # A genuine token for it all the same (decide's mark and the ledger's rule disagreeing):
    # the ledger's rule decides.
    path = "/v1/ack/" + ack_token(LINK_SECRET, n.key, DESK, clock.now())
    for method, status in ((api.get, 200), (api.post, 409)):
        r = await method(path)
        text = await r.text()
        assert r.status == status and "cannot be acknowledged" in text and "emergency" in text
        assert "<form" not in text
    assert await ack_row(store, n.key) is None


async def test_the_recipient_keeps_the_link_after_the_subscription_moves(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail) -> None:
    n = desk.alert()
    [link, _] = links_in(await mail(n))
    await desk.move("night-desk@cca.example")
    # The mail did reach the desk: its link acknowledges, by the desk. A token for an address
    # the notification never had is no good.
    stranger = "/v1/ack/" + ack_token(LINK_SECRET, n.key, "intruder@cca.example", clock.now())
    assert (await api.post(stranger)).status == 404
    r = await api.post(link)
    assert r.status == 200, await r.text()
    assert (await ack_row(store, n.key)).by == DESK  # type: ignore[union-attr]


async def test_a_mail_sent_after_the_subscription_moved_acknowledges_by_its_address(
        store: Store, clock: ManualClock, api: TestClient[Any, Any], desk: Desk,
        mail: Mail) -> None:
    # Decided for the desk; by the time deliver sent it, the subscription pointed at the
    # night desk, which is where the mail went.
    n = desk.alert()
    await desk.move("night-desk@cca.example")
    mailed = await mail(n)
    assert mailed["To"] == "night-desk@cca.example"
    [link, _] = links_in(mailed)
    assert (await api.post(link)).status == 200
    got = await ack_row(store, n.key)
    assert got is not None and got.by == "night-desk@cca.example"


async def test_without_a_link_secret_no_link_is_genuine(
        store: Store, memory_bus: MemoryBus, clock: ManualClock, desk: Desk) -> None:
    n = desk.alert()
    async with store.begin() as conn:
        await ledger.admit(conn, [n], clock.now())
    path = "/v1/ack/" + ack_token(LINK_SECRET, n.key, DESK, clock.now())
    app = api_app(Runtime(settings=Settings(api=ApiSettings(public_url=PUBLIC_URL)),
                          clock=clock, bus=memory_bus, store=store))
    async with TestClient(TestServer(app)) as client:
        assert (await client.post(path)).status == 404
    assert await ack_row(store, n.key) is None


def test_both_parts_carry_the_link_for_the_address_the_mail_goes_to(clock: ManualClock) -> None:
    config = email_notifier(clock, 25).config
    n = ackable("t", "s")
    mail = build_message(n, DESK, config, clock)
    plain, html = links_in(mail)
    token = ack_token(LINK_SECRET, n.key, DESK, clock.now())
    assert plain == html == f"/v1/ack/{token}"
    assert ">I have it</a>" in mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
