"""Thresholds with hysteresis: tomorrow's forecast peak crossing 45,000 MW, wobbling around
it, falling below the clear level, and crossing again; RA margins with a 'below' level."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from consumers.decide.decider import Decider
from monitor import ledger
from monitor.attributes import PeakForecastAttributes, RaOutlookAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, revision_at
from monitor.store import Store
from tests.decide.conftest import T0, add_subscription, add_tenant

PT = ZoneInfo("America/Los_Angeles")
SMS = {"type": "sms", "phone": "+14155550100"}


def peak(trade: date, mw: float, at: datetime) -> Condition:
    return Condition(
        id=f"caiso.peak:CA ISO-TAC:{trade}", kind=Kind.CAISO_PEAK_FORECAST,
        severity=Severity.INFO, status=Status.ACTIVE, regions=("CAISO Grid",),
        attributes=PeakForecastAttributes(area="CA ISO-TAC", trade_date=trade,
                                          market_run="DAM", peak_mw=mw, vintage=at),
        revision=revision_at(at), observed_at=at)


def margin(day: date, mw: float, at: datetime) -> Condition:
    return Condition(
        id=f"caiso.ra-margin:{day}", kind=Kind.CAISO_RA_OUTLOOK, severity=Severity.INFO,
        status=Status.ACTIVE, regions=("CAISO Grid",),
        attributes=RaOutlookAttributes(operating_day=day, min_margin_mw=mw,
                                       min_margin_interval_end=at),
        revision=revision_at(at), observed_at=at)


async def decided(store: Store, tenant: str) -> list[tuple[str, str, float, int]]:
    async with store.connect() as conn:
        entries = await ledger.list_entries(conn, tenant_id=tenant, limit=1000)
    out = []
    for e in sorted(entries, key=lambda e: e.created_at):
        for item in e.notification().items:
            out.append((e.subscription_id, item.transition.value, item.facts["value"],
                        item.facts["episode"]))
    return out


async def test_peak_forecast_hysteresis(store: Store) -> None:
    tenant = await add_tenant(store, "Threshold CCA")
    tomorrow = await add_subscription(store, tenant, {
        "name": "tomorrow >= 45 GW", "channel": SMS, "transitions": ["issued", "ended"],
        "match": {"kinds": ["caiso.peak_forecast"], "thresholds": [
            {"kind": "caiso.peak_forecast", "area": "CA ISO-TAC", "day": "tomorrow",
             "above": 45000, "clear_below": 44000, "severity": "warning"}]}})
    other_area = await add_subscription(store, tenant, {
        "name": "SCE only", "channel": SMS, "match": {"thresholds": [
            {"kind": "caiso.peak_forecast", "area": "SCE-TAC", "above": 1}]}})
    clock = ManualClock(T0)
    decider = Decider(store, MemoryBus(), clock)
    await decider.refresh_index(force=True)

    day = date(2022, 9, 6)
    base = datetime(2022, 9, 5, 6, 0, tzinfo=PT)
    series = [44_100, 45_250, 44_900, 45_300, 44_050, 43_800, 44_500, 45_100, 48_000]
    for i, mw in enumerate(series):
        at = base + timedelta(hours=i)
        clock.set(at)
        await decider.handle(peak(day, mw, at))
        # A forecast for *today* above the line is not tomorrow's peak.
        await decider.handle(peak(day - timedelta(days=1), 50_000, at))
    got = [d for d in await decided(store, tenant) if d[0] == tomorrow]
    assert [(t, v, ep) for _, t, v, ep in got] == [
        ("issued", 45_250, 1),   # crossed 45,000
        # 44,900 / 45,300 / 44,050 wobble above the clear level: silence
        ("ended", 43_800, 1),    # fell below 44,000: all clear
        # 44,500 is between the levels: still clear
        ("issued", 45_100, 2),   # crossed again: a new episode
        # 48,000: still armed, silence
    ]
    assert not [d for d in await decided(store, tenant) if d[0] == other_area]

    # A restarted decide re-reads the arming from the store: replaying every revision again
    # changes nothing.
    again = Decider(store, MemoryBus(), clock)
    await again.refresh_index(force=True)
    for i, mw in enumerate(series):
        await again.handle(peak(day, mw, base + timedelta(hours=i)))
    assert len([d for d in await decided(store, tenant) if d[0] == tomorrow]) == 3


async def test_ra_margin_below(store: Store) -> None:
    tenant = await add_tenant(store, "Margin CCA")
    sub = await add_subscription(store, tenant, {
        "name": "thin margin", "channel": SMS, "match": {"thresholds": [
            {"kind": "caiso.ra_outlook", "below": 0, "clear_above": 1500,
             "severity": "emergency"}]}})
    clock = ManualClock(T0)
    decider = Decider(store, MemoryBus(), clock)
    await decider.refresh_index(force=True)
    base = datetime(2022, 9, 1, 8, 0, tzinfo=PT)
    for i, mw in enumerate([2_000, -350, 900, 1_600, -10]):
        clock.set(base + timedelta(days=i))
        await decider.handle(margin(date(2022, 9, 6), mw, base + timedelta(days=i)))
    got = [(t, v) for s, t, v, _ in await decided(store, tenant) if s == sub]
    assert got == [("issued", -350), ("ended", 1_600), ("issued", -10)]
    async with store.connect() as conn:
        entries = await ledger.list_entries(conn, subscription_id=sub)
    assert {e.notification().severity for e in entries} == {Severity.EMERGENCY}
    assert any("below 0 MW" in e.notification().summary for e in entries)
