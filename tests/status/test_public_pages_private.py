"""The pages served without a key (`/` and the `/n/{prefix}` detail link) show conditions,
never a tenant's data: no subscription name, threshold level, tenant or subscription id, no
recipient, and the status page never lists test notifications."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from monitor import ledger
from monitor.api import subscriptions as sub_api
from monitor.events import Severity
from monitor.notifications import Notification, NotificationItem, Transition
from monitor.store import Store, conditions, subscriptions, tenants
from monitor.store.subscriptions import StoredSubscription
from monitor.subscriptions import SubscriptionSpec
from tests.status import heatwave as hw

SECRET_NAME = "CPA board member Jane's private phone"
TENANT, SUB = "tenant-0f3a9c", "sub-7d1e22b4"
PHONE = "+16265550142"


def _threshold_notification() -> Notification:
    demand = hw.demand()
    facts = {"threshold": {"kind": "caiso.demand", "above": 43210.0, "clear_below": 42000.0,
                           "severity": "warning"}, "value": 50118.0}
    return Notification(
        key="b" * 64, tenant_id=TENANT, subscription_id=SUB, subscription_name=SECRET_NAME,
        channel={"type": "sms", "phone": PHONE}, decided_at=hw.NOW, severity=Severity.WARNING,
        items=(NotificationItem(transition=Transition.ISSUED, condition=demand, facts=facts),),
        summary="CAISO demand 50,118 MW, above 43,210 MW")


def _test_notification() -> Notification:
    spec = SubscriptionSpec.model_validate({"name": SECRET_NAME,
                                            "channel": {"type": "sms", "phone": PHONE}})
    sub = StoredSubscription(id=SUB, tenant_id=TENANT, spec=spec, status_reason=None,
                             created_at=hw.NOW, updated_at=hw.NOW)
    return sub_api.test_notification(sub, hw.NOW.astimezone(UTC) + timedelta(seconds=5))


async def _admit(store: Store, *notes: Notification) -> None:
    async with store.begin() as conn:
        for i, n in enumerate(notes):
            assert await ledger.admit(conn, [n], (hw.NOW + timedelta(seconds=i)).astimezone(UTC))


def _assert_private(html: str) -> None:
    for secret in (SECRET_NAME, "Jane", TENANT, SUB, PHONE, "43,210", "43210", "42,000"):
        assert secret not in html, secret


async def test_status_page_lists_conditions_not_tenants_and_never_tests(
        client: TestClient[Any, Any], store: Store) -> None:
    eea3 = next(c for c in hw.heatwave_conditions() if c.id == "caiso.notice:202202696")
    await _admit(store, hw.notification("a" * 64, eea3), _threshold_notification(),
                 _test_notification())
    resp = await client.get("/")
    assert resp.status == 200
    html = await resp.text()
    _assert_private(html)
    recent = HTMLParser(html).css_first('section[aria-labelledby="h-recent"]')
    assert recent is not None
    rows = [" ".join(r.text(separator=" ").split()) for r in recent.css("tbody tr")]
    assert len(rows) == 2, rows  # the test notification is not listed
    assert "CAISO demand 9/6 crossed a threshold" in rows[0] and "WARNING" in rows[0]
    assert "CAISO EEA 3 step 1 issued 9/6 17:17-20:00 PT" in rows[1] and "sms" in rows[1]
    assert "test notification" not in html


async def test_detail_link_hides_internal_source_addresses(
        client: TestClient[Any, Any], store: Store) -> None:
    eea3 = next(c for c in hw.heatwave_conditions() if c.id == "caiso.notice:202202696")
    from_mailbox = eea3.model_copy(update={"source_url": "imap://mail.internal.cca/CAISO"})
    public = hw.demand().model_copy(
        update={"source_url": "https://www.caiso.com/outlook/current/demand.csv"})
    await _admit(store, hw.notification("c" * 64, from_mailbox), hw.notification("d" * 64, public))
    html = await (await client.get(f"/n/{'c' * 12}")).text()
    assert "CAISO EEA 3" in html and "mail.internal" not in html
    html = await (await client.get(f"/n/{'d' * 12}")).text()
    assert 'href="https://www.caiso.com/outlook/current/demand.csv"' in html


async def test_detail_link_shows_the_conditions_only(
        client: TestClient[Any, Any], store: Store) -> None:
    threshold, test = _threshold_notification(), _test_notification()
    await _admit(store, threshold, test)
    resp = await client.get(f"/n/{threshold.key[:12]}")
    assert resp.status == 200
    html = await resp.text()
    _assert_private(html)
    assert "CAISO demand 9/6 crossed a threshold" in html and "caiso.demand:2022-09-06" in html
    assert resp.headers["X-Robots-Tag"] == "noindex"
    assert resp.headers["Referrer-Policy"] == "no-referrer"

    # The recipient of a test learns it was one; a stranger learns nothing of whose.
    resp = await client.get(f"/n/{test.key[:12]}")
    assert resp.status == 200
    html = await resp.text()
    _assert_private(html)
    assert "capmon test notification" in html and "capmon.test" not in html


async def test_charts_show_threshold_ranges_not_levels_names_or_tenants(
        client: TestClient[Any, Any], store: Store) -> None:
    tenant_name = "Clean Power Alliance of Southern California"
    async with store.begin() as conn:
        for c in hw.heatwave_conditions():
            await conditions.record(conn, c, hw.NOW)
        tenant, _ = await tenants.create_tenant(conn, tenant_name, None, hw.NOW)
        spec = SubscriptionSpec.model_validate({
            "name": SECRET_NAME, "channel": {"type": "sms", "phone": PHONE},
            "match": {"kinds": ["caiso.peak_forecast"], "thresholds": [
                {"kind": "caiso.peak_forecast", "area": "SCE-TAC", "day": "tomorrow",
                 "above": 23456, "clear_below": 22789}]}})
        sub, _ = await subscriptions.create(conn, tenant.id, spec, hw.NOW)
    html = await (await client.get("/")).text()
    _assert_private(html)
    for secret in (tenant_name, tenant.id, sub.id, "23,456", "23456", "22,789", "22789"):
        assert secret not in html, secret
    charts = HTMLParser(html).css_first('section[aria-labelledby="h-charts"]')
    assert charts is not None
    assert ("SCE-TAC 24,410 MW, above the 23,000 MW\u201324,000 MW range of thresholds set by "
            "1 tenant") in charts.text()
