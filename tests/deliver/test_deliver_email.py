"""Email through aiosmtplib to a real SMTP server (aiosmtpd) answering 250, 451 and 550, and
the RFC 8058 one-click unsubscribe endpoint (POST unsubscribes, GET never does)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from capmon.api import api_app
from consumers.notifiers.email import build_message
from monitor import ledger
from monitor.attributes import NoticeAttributes, SourceHealthAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import ApiSettings, Settings
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.links import UNSUBSCRIBE_TOKEN_DAYS, unsubscribe_token
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store
from monitor.store.schema import subscriptions
from tests.deliver.conftest import LINK_SECRET, PUBLIC_URL, email_notifier, make_deliverer
from tests.deliver.helpers import add_subscription, add_tenant, dr_event, eea3, notification
from tests.deliver.receivers import SmtpCapture


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))


async def status_of(store: Store, sub_id: str) -> tuple[str, str | None]:
    async with store.connect() as conn:
        row = (await conn.execute(sa.select(subscriptions.c.status, subscriptions.c.status_reason)
                                  .where(subscriptions.c.id == sub_id))).one()
    return row[0], row[1]


async def test_multipart_mail_with_alert_headers_and_one_click_unsubscribe(
        store: Store, memory_bus: MemoryBus, clock: ManualClock,
        smtp: tuple[SmtpCapture, int]) -> None:
    handler, port = smtp
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    d = await make_deliverer(store, memory_bus, clock, {"email": email_notifier(clock, port)})
    n = notification(tenant_id, sub_id, "email", "desk@cca.example", condition=dr_event())
    await d.submit(n)

    [mail] = handler.messages
    assert handler.envelopes == [("alerts@capmon.example", ["desk@cca.example"])]
    assert mail["Message-ID"] == f"<{n.key}@capmon.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Capmon-Notification-Key"] == n.key
    token = unsubscribe_token(LINK_SECRET, sub_id, "desk@cca.example", clock.now())
    assert mail["List-Unsubscribe"] == f"<{PUBLIC_URL}/v1/unsubscribe/{token}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Subject"].startswith("[capmon] CAISO EEA 3")
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = [p for p in mail.iter_parts()]
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "BIP" in plain.get_content() and "SCEC" in plain.get_content()
    assert f"{PUBLIC_URL}/n/{n.key[:12]}" in plain.get_content()
    assert "<table" in html.get_content() and "Unsubscribe</a>" in html.get_content()
    e = await _entry(store, n.key)
    assert e.state == "delivered"


async def _entry(store: Store, key: str) -> ledger.LedgerEntry:
    async with store.connect() as conn:
        e = await ledger.get(conn, key)
    assert e is not None
    return e


@pytest.mark.parametrize(("address", "state", "code", "sub_status"), [
    ("desk@busy.test", "failed", 451, "active"),
    ("desk@reject.test", "dead", 550, "disabled"),
])
async def test_smtp_4xx_retried_5xx_permanent(
        store: Store, memory_bus: MemoryBus, clock: ManualClock, smtp: tuple[SmtpCapture, int],
        address: str, state: str, code: int, sub_status: str) -> None:
    _, port = smtp
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", address, clock.now())
    d = await make_deliverer(store, memory_bus, clock, {"email": email_notifier(clock, port)})
    n = notification(tenant_id, sub_id, "email", address)
    await d.submit(n)
    e = await _entry(store, n.key)
    assert e.state == state
    async with store.connect() as conn:
        [a] = await ledger.attempts_for(conn, n.key)
    assert a["status_code"] == code
    assert (await status_of(store, sub_id))[0] == sub_status


async def test_smtp_server_down_is_retried(store: Store, memory_bus: MemoryBus,
                                           clock: ManualClock) -> None:
    from tests.deliver.receivers import free_port
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    d = await make_deliverer(store, memory_bus, clock,
                             {"email": email_notifier(clock, free_port())})
    n = notification(tenant_id, sub_id, "email", "desk@cca.example")
    await d.submit(n)
    e = await _entry(store, n.key)
    assert e.state == "failed" and (e.last_error or "").startswith("connect")


@pytest.fixture
async def api(store: Store, memory_bus: MemoryBus, clock: ManualClock
              ) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    settings = Settings(api=ApiSettings(public_url=PUBLIC_URL, link_secret=LINK_SECRET))
    app = api_app(Runtime(settings=settings, clock=clock, bus=memory_bus, store=store))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_get_never_unsubscribes_post_does(
        store: Store, clock: ManualClock, api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    path = "/v1/unsubscribe/" + unsubscribe_token(LINK_SECRET, sub_id, "desk@cca.example",
                                                  clock.now())
    r = await api.get(path)
    assert r.status == 200 and "<form method=\"post\"" in await r.text()
    assert (await status_of(store, sub_id))[0] == "active"
    r = await api.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status == 200
    assert await status_of(store, sub_id) == ("unsubscribed", "email one-click unsubscribe")


@pytest.mark.parametrize("mangle", ["other-subscription", "bad-mac", "no-mac", "undated"])
async def test_forged_unsubscribe_tokens_are_refused(
        store: Store, clock: ManualClock, api: TestClient,  # type: ignore[type-arg]
        mangle: str) -> None:
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    other = await add_subscription(store, tenant_id, "email", "x@cca.example", clock.now())
    token = unsubscribe_token(LINK_SECRET, sub_id, "desk@cca.example", clock.now())
    forged = {"other-subscription": other + "." + token.rpartition(".")[2],
              "bad-mac": token[:-1] + ("A" if token[-1] != "A" else "B"),
              "undated": sub_id + "." + token.rpartition(".")[2],
              "no-mac": sub_id}[mangle]
    r = await api.post(f"/v1/unsubscribe/{forged}", data={"List-Unsubscribe": "One-Click"})
    assert r.status == 404
    assert (await status_of(store, sub_id))[0] == "active"
    assert (await status_of(store, other))[0] == "active"


def test_mail_speaks_pacific_time_and_says_what_capmon_cannot_see(clock: ManualClock) -> None:
    config = email_notifier(clock, 25).config
    rmo = eea3().model_copy(update={"attributes": NoticeAttributes(
        notice_no="202202630", issued_at=datetime(2022, 8, 29, 18, 35, tzinfo=UTC))})
    plain = build_message(notification("t", "s", "email", "desk@cca.example", condition=rmo),
                          "desk@cca.example", config, clock).get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "Issued at: Mon Aug 29 2022, 11:35 PDT" in text  # not 2022-08-29T18:35:00Z
    assert "18:35" not in text

    since = datetime(2022, 9, 6, 16, 47, tzinfo=UTC)
    blind = Condition(
        id="source.health:sce-dr", kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
        status=Status.ACTIVE, window=Window(start=since),
        attributes=SourceHealthAttributes(source="sce-dr", reason="dns",
                                          last_error="cannot resolve www.sce.openadr.com"),
        revision=1, observed_at=since)
    mail = build_message(notification("t", "s", "email", "desk@cca.example", condition=blind),
                         "desk@cca.example", config, clock)
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "* capmon cannot see SCE DR events since 9/6 09:47 PT" in text
    assert "Last error: cannot resolve www.sce.openadr.com" in text
    assert "Source: SCE DR events" in text


async def test_a_link_of_a_former_address_does_not_touch_the_new_one(
        store: Store, clock: ManualClock, api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "old-desk@cca.example",
                                    clock.now())
    old_link = "/v1/unsubscribe/" + unsubscribe_token(LINK_SECRET, sub_id,
                                                      "old-desk@cca.example", clock.now())
    async with store.begin() as conn:  # the tenant moves the subscription (a PUT)
        await conn.execute(sa.update(subscriptions)
                           .where(subscriptions.c.id == sub_id)
                           .values(target="new-desk@cca.example"))
    r = await api.post(old_link, data={"List-Unsubscribe": "One-Click"})
    assert r.status == 404 and "no longer sends" in (await r.json())["detail"]
    assert (await status_of(store, sub_id))[0] == "active"
    async with store.connect() as conn:
        assert await endpoint_store.opted_out(conn, "email", "new-desk@cca.example") is None


async def test_unsubscribing_an_already_unsubscribed_subscription_still_opts_out(
        store: Store, clock: ManualClock, api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    async with store.begin() as conn:  # the tenant had unsubscribed it: that binds nothing
        await sub_store.set_status(conn, sub_id, "unsubscribed", clock.now())
        assert await endpoint_store.opted_out(conn, "email", "desk@cca.example") is None
    link = "/v1/unsubscribe/" + unsubscribe_token(LINK_SECRET, sub_id, "desk@cca.example",
                                                  clock.now())
    r = await api.post(link, data={"List-Unsubscribe": "One-Click"})
    assert r.status == 200
    async with store.connect() as conn:
        assert await endpoint_store.opted_out(conn, "email", "desk@cca.example") == (
            "email one-click unsubscribe")
        # Another tenant cannot subscribe the person again.
        assert await endpoint_store.opt_out_refusal(conn, "email", "desk@cca.example")


async def test_an_expired_link_is_a_clear_410_and_changes_nothing(
        store: Store, clock: ManualClock, api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    link = "/v1/unsubscribe/" + unsubscribe_token(LINK_SECRET, sub_id, "desk@cca.example",
                                                  clock.now())
    clock.advance(timedelta(days=UNSUBSCRIBE_TOKEN_DAYS + 2).total_seconds())
    for method in (api.get, api.post):
        r = await method(link)
        assert r.status == 410 and f"{UNSUBSCRIBE_TOKEN_DAYS} days" in (await r.json())["detail"]
    assert (await status_of(store, sub_id))[0] == "active"


def _undated_token(sub_id: str, address: str) -> str:
    """A link as mail sent before tokens carried their day spells it."""
    message = b"capmon-unsubscribe-v2\n" + f"{sub_id}\n{address.lower()}".encode()
    digest = hmac.new(LINK_SECRET.get_secret_value().encode(), message, hashlib.sha256).digest()
    return f"{sub_id}.{base64.urlsafe_b64encode(digest).decode()[:32]}"


async def test_links_in_mail_already_sent_keep_working_for_their_address(
        store: Store, clock: ManualClock, api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, _ = await add_tenant(store, clock.now())
    kept = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    moved = await add_subscription(store, tenant_id, "email", "old@cca.example", clock.now())
    async with store.begin() as conn:
        await conn.execute(sa.update(subscriptions).where(subscriptions.c.id == moved)
                           .values(target="new@cca.example"))
    r = await api.post(f"/v1/unsubscribe/{_undated_token(moved, 'old@cca.example')}")
    assert r.status == 404
    assert (await status_of(store, moved))[0] == "active"
    r = await api.post(f"/v1/unsubscribe/{_undated_token(kept, 'desk@cca.example')}")
    assert r.status == 200
    assert (await status_of(store, kept))[0] == "unsubscribed"


@pytest.mark.parametrize("address", ["desk@cca.example", "Desk@cca.example", "DESK@CCA.EXAMPLE"])
async def test_an_email_opt_out_binds_the_address_whatever_its_case(
        store: Store, clock: ManualClock, api: TestClient,  # type: ignore[type-arg]
        address: str) -> None:
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "email", "desk@cca.example", clock.now())
    link = "/v1/unsubscribe/" + unsubscribe_token(LINK_SECRET, sub_id, "desk@cca.example",
                                                  clock.now())
    assert (await api.post(link)).status == 200
    _, key = await add_tenant(store, clock.now())
    r = await api.post("/v1/subscriptions", headers={"Authorization": f"Bearer {key}"},
                       json={"name": "poached", "match": {"kinds": ["caiso.eea"]},
                             "channel": {"type": "email", "address": address}})
    assert r.status == 409, await r.text()
