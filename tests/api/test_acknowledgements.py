"""Acknowledgements: once per notification, at or above the subscription's `ack_severity`, by
the tenant's key (`POST /v1/notifications/{key}/ack`) or by an SMS reply from the number that
was paged (through the signed Twilio inbound webhook); shown in the delivery log and timed."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from consumers.notifiers.sms_text import render_sms
from monitor import ledger
from monitor.attributes import NoticeAttributes
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status
from monitor.metrics import TIME_TO_ACK
from monitor.notifications import (
    Notification,
    NotificationItem,
    SmsChannel,
    Transition,
    notification_key,
)
from monitor.store import Store
from tests.api.conftest import CHANNELS, bearer, new_tenant

PHONE, OTHER = "+14155550123", "+14155550999"
INBOUND = "http://127.0.0.1:8080/v1/twilio/inbound"  # api.public_url + the path Twilio posts


async def paged(client: TestClient[Any, Any], store: Store, clock: ManualClock, key: str,
                severity: Severity, **spec: Any) -> tuple[str, str]:
    """A subscription for PHONE and one notification of `severity` sent to it: (sub, key)."""
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json={
        "name": "on-call scheduler", "channel": {"type": "sms", "phone": PHONE}, **spec})
    assert resp.status == 201, await resp.text()
    sub = await resp.json()
    condition = Condition(
        id=f"caiso.notice:{uuid.uuid4().hex[:9]}", kind=Kind.CAISO_EEA, severity=severity,
        status=Status.ACTIVE, attributes=NoticeAttributes(level="3"), revision=1,
        observed_at=clock.now())
    item = NotificationItem(transition=Transition.ISSUED, condition=condition)
    n = Notification(
        key=notification_key(sub["id"], condition.id, Transition.ISSUED, {}),
        tenant_id=sub["tenant_id"], subscription_id=sub["id"], channel=SmsChannel(phone=PHONE),
        decided_at=clock.now(), severity=severity, items=(item,), summary="CAISO EEA 3",
        acknowledgeable=True)
    async with store.begin() as conn:
        await ledger.admit(conn, [n], clock.now())
    return sub["id"], n.key


async def sms(client: TestClient[Any, Any], sender: str, body: str,
              sid: str | None = None) -> str:
    params = {"From": sender, "To": "+15005550006", "Body": body,
              "MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32}
    sig = RequestValidator(CHANNELS["twilio"]["auth_token"]).compute_signature(INBOUND, params)
    resp = await client.post("/v1/twilio/inbound", data=params,
                             headers={"X-Twilio-Signature": sig})
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def ack_of(client: TestClient[Any, Any], api_key: str, key: str) -> Any:
    resp = await client.get(f"/v1/notifications/{key}", headers=bearer(api_key))
    return (await resp.json())["acknowledgement"]


async def test_the_tenants_key_acknowledges_once(client: TestClient[Any, Any], store: Store,
                                                 clock: ManualClock) -> None:
    _t, api_key = await new_tenant(client, "Desert Community Energy")
    _sub, key = await paged(client, store, clock, api_key, Severity.CRITICAL)
    count = TIME_TO_ACK.labels(severity="critical")._sum.get()
    clock.advance(240)
    first = await client.post(f"/v1/notifications/{key}/ack", headers=bearer(api_key),
                              json={"by": "DCE load management"})
    assert first.status == 200, await first.text()
    assert (await first.json())["via"] == "api"
    # Four minutes from sending to "I have it".
    assert TIME_TO_ACK.labels(severity="critical")._sum.get() - count == 240
    second = await client.post(f"/v1/notifications/{key}/ack", headers=bearer(api_key))
    assert second.status == 409
    assert "DCE load management" in (await second.json())["detail"]
    shown = await ack_of(client, api_key, key)
    assert shown["by"] == "DCE load management" and shown["via"] == "api"
    log = await (await client.get("/v1/notifications", headers=bearer(api_key))).json()
    assert log["items"][0]["acknowledgement"]["by"] == "DCE load management"


async def test_below_ack_severity_and_other_tenants_are_refused(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _t, api_key = await new_tenant(client, "Clean Power Alliance")
    _sub, watch = await paged(client, store, clock, api_key, Severity.WARNING)
    resp = await client.post(f"/v1/notifications/{watch}/ack", headers=bearer(api_key))
    assert resp.status == 409 and (await resp.json())["title"] == "Not acknowledgeable"
    _sub2, low = await paged(client, store, clock, api_key, Severity.WARNING,
                             ack_severity="warning")
    assert (await client.post(f"/v1/notifications/{low}/ack",
                              headers=bearer(api_key))).status == 200
    _o, other_key = await new_tenant(client, "Someone else")
    assert (await client.post(f"/v1/notifications/{low}/ack",
                              headers=bearer(other_key))).status == 404


async def test_an_sms_reply_from_the_paged_number_acknowledges(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _t, api_key = await new_tenant(client, "Desert Community Energy")
    _sub, older = await paged(client, store, clock, api_key, Severity.CRITICAL)
    clock.advance(60)
    _sub2, newer = await paged(client, store, clock, api_key, Severity.EMERGENCY)
    # A number that was not paged has nothing to acknowledge.
    assert "nothing sent to this number" in await sms(client, OTHER, "ACK")
    assert await ack_of(client, api_key, older) is None
    # The code the older message showed picks it; a bare ACK takes the newest.
    async with store.connect() as conn:
        entry = await ledger.get(conn, older)
    assert entry is not None
    shown = re.search(r"Reply ACK ([0-9A-F]{4}) ", render_sms(entry.notification(), "x"))
    assert shown is not None
    reply = await sms(client, PHONE, f"ack {shown.group(1).lower()}")
    assert f"({shown.group(1)})" in reply
    taken = await ack_of(client, api_key, older)
    assert taken["by"] == PHONE and taken["via"] == "sms"
    assert await ack_of(client, api_key, newer) is None
    sid = "SM" + uuid.uuid4().hex
    assert "acknowledged" in await sms(client, PHONE, " 1 ", sid)
    assert (await ack_of(client, api_key, newer))["via"] == "sms"
    # Twilio retrying the same message changes nothing and says nothing.
    assert "<Message>" not in await sms(client, PHONE, "1", sid)
    # Everything taken: a further ACK is told so.
    assert "nothing sent to this number" in await sms(client, PHONE, "ACK")


async def test_an_old_page_is_not_acknowledged_by_sms(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _t, api_key = await new_tenant(client, "Clean Power Alliance")
    _sub, key = await paged(client, store, clock, api_key, Severity.CRITICAL)
    clock.advance(int(timedelta(days=2).total_seconds()))
    assert "nothing sent to this number" in await sms(client, PHONE, "ACK")
    assert await ack_of(client, api_key, key) is None
