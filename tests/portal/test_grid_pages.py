"""The portal's calendar feed, silences and acknowledgement: each through the API's own
operation, with its refusals shown on the page; another tenant's silence or notification is
404."""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from monitor import ledger
from monitor.attributes import NoticeAttributes
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status
from monitor.notifications import (
    Notification,
    NotificationItem,
    SmsChannel,
    Transition,
    notification_key,
)
from monitor.store import Store
from tests.api.conftest import bearer, new_tenant
from tests.portal.conftest import Browser, location
from tests.portal.test_pages import alert

PHONE = "+14155550123"


async def sms_subscription(client: TestClient[Any, Any], key: str) -> str:
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json={
        "name": "on-call scheduler", "channel": {"type": "sms", "phone": PHONE}})
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def sent(store: Store, clock: ManualClock, tenant_id: str, sub_id: str,
               severity: Severity) -> str:
    condition = Condition(
        id=f"caiso.notice:{uuid.uuid4().hex[:9]}", kind=Kind.CAISO_EEA, severity=severity,
        status=Status.ACTIVE, attributes=NoticeAttributes(level="3"), revision=1,
        observed_at=clock.now())
    n = Notification(
        key=notification_key(sub_id, condition.id, Transition.ISSUED, {}), tenant_id=tenant_id,
        subscription_id=sub_id, channel=SmsChannel(phone=PHONE), decided_at=clock.now(),
        severity=severity, items=(NotificationItem(transition=Transition.ISSUED,
                                                   condition=condition),),
        summary="CAISO EEA 3 issued")
    async with store.begin() as conn:
        await ledger.admit(conn, [n], clock.now())
    return n.key


async def test_the_calendar_address_is_shown_once_and_can_be_replaced_or_removed(
        browser: Browser, client: TestClient[Any, Any], tenant: tuple[str, str]) -> None:
    sub_id = await sms_subscription(client, tenant[1])
    page = f"/portal/subscriptions/{sub_id}"
    assert "Make a feed address" in await (await browser.get(page)).text()
    html = await (await browser.post(f"{page}/calendar")).text()
    first = re.search(r"<code>(https?://[^<]+/v1/calendar/[^<]+\.ics)</code>", html)
    assert first is not None and "Shown this once" in html
    path = first.group(1)[first.group(1).index("/v1/calendar/"):]
    feed = await client.get(path)
    assert feed.status == 200 and "BEGIN:VCALENDAR" in await feed.text()
    again = await (await browser.get(page)).text()
    assert first.group(1) not in again and "Replace the feed address" in again
    html = await (await browser.post(f"{page}/calendar")).text()
    assert first.group(1) not in html
    assert (await client.get(path)).status == 404  # the old address no longer answers
    assert location(await browser.post(f"{page}/calendar/delete")) == f"{page}?done=feed_removed"
    resp = await browser.post(f"{page}/calendar/delete")
    assert resp.status == 404 and alert(await resp.text()).startswith("No calendar feed")


async def test_silences_made_expired_and_deleted_in_the_portal(
        browser: Browser, client: TestClient[Any, Any], tenant: tuple[str, str]) -> None:
    sub_id = await sms_subscription(client, tenant[1])
    form = [("kinds", "caiso.flex_alert"), ("subscription_ids", sub_id),
            ("min_severity", "info"), ("max_severity", "critical"),
            ("starts_at", "2022-09-08T00:00"), ("ends_at", "2022-09-09T00:00"),
            ("created_by", "Dana"), ("comment", "Flex Alerts handled by phone on 9/8")]
    assert location(await browser.post("/portal/silences", form)) == \
        "/portal/silences?done=created"
    listed = await (await client.get("/v1/silences", headers=bearer(tenant[1]))).json()
    [made] = listed["items"]
    # The form's times are Pacific: midnight 9/8 PDT.
    assert made["starts_at"].startswith("2022-09-08T07:00:00")
    assert made["match"]["kinds"] == ["caiso.flex_alert"]
    assert made["match"]["subscription_ids"] == [sub_id] and made["status"] == "pending"
    html = await (await browser.get("/portal/silences")).text()
    assert "Flex Alerts handled by phone on 9/8" in html and made["id"] in html
    # A silence of everything is refused with the API's words, and the form keeps its values.
    resp = await browser.post("/portal/silences", [("ends_at", "2022-09-09T00:00"),
                                                  ("created_by", "Dana"), ("comment", "all")])
    html = await resp.text()
    assert resp.status == 422 and "at least one matcher" in alert(html)
    assert 'value="Dana"' in html
    assert location(await browser.post(f"/portal/silences/{made['id']}/expire")) == \
        "/portal/silences?done=expired"
    got = await (await client.get(f"/v1/silences/{made['id']}",
                                  headers=bearer(tenant[1]))).json()
    assert got["status"] == "expired"
    assert location(await browser.post(f"/portal/silences/{made['id']}/delete")) == \
        "/portal/silences?done=deleted"
    assert (await client.get(f"/v1/silences/{made['id']}",
                             headers=bearer(tenant[1]))).status == 404


async def test_acknowledge_in_the_portal(browser: Browser, client: TestClient[Any, Any],
                                         tenant: tuple[str, str], store: Store,
                                         clock: ManualClock) -> None:
    sub_id = await sms_subscription(client, tenant[1])
    low = await sent(store, clock, tenant[0], sub_id, Severity.WARNING)
    assert "I have it" not in await (await browser.get(f"/portal/notifications/{low}")).text()
    key = await sent(store, clock, tenant[0], sub_id, Severity.CRITICAL)
    html = await (await browser.get(f"/portal/notifications/{key}")).text()
    assert "I have it" in html
    assert location(await browser.post(f"/portal/notifications/{key}/ack",
                                       [("by", "Dana at the desk")])) == \
        f"/portal/notifications/{key}?done=acknowledged"
    html = await (await browser.get(f"/portal/notifications/{key}")).text()
    assert "Acknowledged by <strong>Dana at the desk</strong> (portal)" in html
    log = await (await browser.get("/portal/notifications")).text()
    row = next(r for r in log.split("<tr>") if f"/portal/notifications/{key}\"" in r)
    assert 'data-label="Acknowledged">Dana at the desk (portal) 2022-' in row
    other = next(r for r in log.split("<tr>") if f"/portal/notifications/{low}\"" in r)
    assert 'data-label="Acknowledged">\u2013</td>' in other
    resp = await browser.post(f"/portal/notifications/{key}/ack", [("by", "someone else")])
    assert resp.status == 409 and "Dana at the desk" in alert(await resp.text())
    got = await (await client.get(f"/v1/notifications/{key}", headers=bearer(tenant[1]))).json()
    assert got["acknowledgement"]["by"] == "Dana at the desk"


async def test_another_tenants_silences_and_notifications_are_not_found(
        browser: Browser, client: TestClient[Any, Any], store: Store,
        clock: ManualClock) -> None:
    other_id, other_key = await new_tenant(client, "Other CCA")
    theirs = await sms_subscription(client, other_key)
    resp = await client.post("/v1/silences", headers=bearer(other_key), json={
        "match": {"kinds": ["caiso.rmo"]}, "ends_at": "2030-01-01T00:00:00Z",
        "created_by": "them", "comment": "theirs"})
    silence = (await resp.json())["id"]
    key = await sent(store, clock, other_id, theirs, Severity.CRITICAL)
    for path in (f"/portal/silences/{silence}/expire", f"/portal/silences/{silence}/delete",
                 f"/portal/notifications/{key}/ack",
                 f"/portal/subscriptions/{theirs}/calendar"):
        assert (await browser.post(path, [("by", "me")])).status == 404, path
    assert "theirs" not in await (await browser.get("/portal/silences")).text()
    got = await (await client.get(f"/v1/silences/{silence}", headers=bearer(other_key))).json()
    assert got["status"] == "active"
