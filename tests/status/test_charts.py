"""The status page's charts: what each one plots (`series`) and the SVG drawn from it
(`render`), read back with lxml: the series are there, the peak and shortfalls are marked,
the text alternative says the numbers, and no tenant's threshold level or id appears."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.api.charts import ThresholdCache, build_charts
from monitor.api.charts.render import (
    SEVERITY_COLOURS,
    SHORTFALL,
    demand_chart,
    margins_chart,
    peaks_chart,
    timeline_chart,
)
from monitor.api.charts.series import (
    ThresholdLevel,
    area_peaks,
    band,
    demand_series,
    margin_days,
    threshold_levels,
    timeline,
)
from monitor.events import Condition, Kind, Severity, Status
from monitor.store import Store, subscriptions, tenants
from monitor.store.subscriptions import StoredSubscription
from monitor.subscriptions import SubscriptionSpec
from tests.status import heatwave as hw

SVG = "{http://www.w3.org/2000/svg}"
TODAY, TOMORROW = date(2022, 9, 6), date(2022, 9, 7)


def svg_of(chart: Any) -> Any:
    assert chart.svg is not None
    return etree.fromstring(str(chart.svg).encode())


def legend(root: Any) -> list[str]:
    return [t.text for t in root.iterfind(f".//{SVG}g[@class='legends']//{SVG}text")]


def axis(root: Any, which: str) -> list[str]:
    return [t.text for t in root.xpath(f"//s:g[starts-with(@class, 'axis {which}')]//s:text",
                                       namespaces={"s": SVG[1:-1]})]


def reading(at_hh: int, at_mm: int, mw: float, revision: int, *, day: date = TODAY,
            da: float | None = None, ha: float | None = None) -> Condition:
    c = hw.demand()
    at = hw.pt(day.day, at_hh, at_mm)
    attrs = c.attributes.model_copy(update={
        "operating_day": day, "interval_end": at, "current_mw": mw,
        "day_ahead_forecast_mw": da if da is not None else mw - 300,
        "hour_ahead_forecast_mw": ha if ha is not None else mw + 100})
    return c.model_copy(update={"attributes": attrs, "revision": revision})


def day_of_readings() -> list[Condition]:
    return [reading(h, 0, 36000 + 900 * h, h) for h in range(1, 18)] + [
        reading(17, 30, 51676, 100, da=50938, ha=51690)]


def test_demand_series_one_point_per_interval_from_history() -> None:
    history = day_of_readings()
    # A republished revision of 09:00 (a restarted producer) replaces the older one; another
    # day's revision and one without an interval are left out.
    history += [reading(9, 0, 44444, 50), reading(9, 0, 1, 1, day=date(2022, 9, 5)),
                hw.demand().model_copy(update={"attributes": hw.demand().attributes.model_copy(
                    update={"interval_end": None}), "revision": 200})]
    s = demand_series(list(reversed(history)), hw.status(), TODAY)
    assert [p.at for p in s.actual] == sorted(p.at for p in s.actual)
    assert len(s.actual) == 18 and len(s.day_ahead) == 18 and len(s.hour_ahead) == 18
    assert {p.mw for p in s.actual if p.at == hw.pt(6, 9)} == {44444}
    assert s.current is not None and s.current.mw == 51676 and s.current.at == hw.pt(6, 17, 30)
    # The forecast peak as the demand panel reads it: Today's Outlook's own.
    assert (s.forecast_peak_mw, s.forecast_peak_at) == (51276, hw.pt(6, 17, 0))
    assert (s.start, s.end) == (hw.pt(6, 0), hw.pt(7, 0))


def test_demand_forecast_peak_falls_back_on_the_day_ahead_file() -> None:
    s = demand_series([hw.demand()], None, TODAY)
    assert (s.forecast_peak_mw, s.forecast_peak_at) == (51276, hw.pt(6, 17, 0))
    assert s.current is not None and s.current.mw == 50118


def test_demand_chart_draws_the_curves_and_marks_the_peak_and_now() -> None:
    chart = demand_chart(demand_series(day_of_readings(), hw.status(), TODAY))
    root = svg_of(chart)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-demand-title chart-demand-desc"
    assert root.find(f"{SVG}title").text == "CAISO demand today (Tue Sep 6)"
    desc = root.find(f"{SVG}desc").text
    assert desc == chart.summary
    assert "Demand 51,676 MW at 17:30 PDT" in desc
    assert "today's forecast peak 51,276 MW at 17:00 PDT, 101% of it" in desc
    assert "day-ahead forecast for 17:30 PDT was 50,938 MW" in desc
    assert legend(root) == ["Demand", "Day-ahead", "Hour-ahead", "Forecast peak", "Now"]
    lines = root.findall(f".//{SVG}path[@class='line reactive nofill']")
    assert len(lines) == 4  # three curves and the forecast peak across the day
    peak_line = lines[3].get("d").split()
    assert peak_line[1] == peak_line[-1]  # horizontal: the same y at both ends
    assert len(root.findall(f".//{SVG}circle")) == 1  # the current reading
    assert root.find(f".//{SVG}script") is None
    # Pacific hours on the axis, sized by the viewBox alone.
    assert axis(root, "x") == ["00:00", "06:00", "12:00", "18:00"]
    assert root.get("viewBox") == "0 0 400 270" and root.get("width") is None


def test_no_demand_reading_yet_is_said_not_drawn() -> None:
    chart = demand_chart(demand_series([], None, TODAY))
    assert chart.svg is None and chart.summary.startswith("No data")


def test_threshold_levels_are_tomorrows_above_levels_of_active_subscriptions() -> None:
    def spec(*thresholds: dict[str, Any], status: str = "active") -> SubscriptionSpec:
        return SubscriptionSpec.model_validate({
            "name": "n", "status": status, "channel": {"type": "sms", "phone": "+16265550142"},
            "match": {"kinds": ["caiso.peak_forecast"], "thresholds": list(thresholds)}})

    pf = {"kind": "caiso.peak_forecast"}
    levels = threshold_levels([
        ("t1", spec({**pf, "area": "SCE-TAC", "day": "tomorrow", "above": 23456},
                    {**pf, "day": "today", "above": 1}, {**pf, "below": 2})),
        ("t2", spec({**pf, "above": 47100})),
        ("t3", spec({"kind": "caiso.demand", "above": 43210})),
        ("t4", spec({**pf, "above": 3}, status="paused")),
    ])
    assert levels == [ThresholdLevel("t1", "SCE-TAC", 23456), ThresholdLevel("t2", None, 47100)]


def test_threshold_bands_are_rounded_outward() -> None:
    assert band([23456]) == (23000, 24000)
    assert band([23000, 23500]) == (23000, 24000)
    assert band([48000]) == (48000, 49000)
    assert band([-1]) == (-1000, 0)
    assert band([]) is None


def test_area_peaks_use_the_newest_run_and_every_applicable_level() -> None:
    levels = [ThresholdLevel("t1", "SCE-TAC", 23456), ThresholdLevel("t2", "SCE-TAC", 24100),
              ThresholdLevel("t2", None, 47100), ThresholdLevel("t3", "My private area", 1)]
    conditions = [*hw.heatwave_conditions(), hw.peak("PGE-TAC", "DAM", 20000)]
    peaks = area_peaks(conditions, levels, TOMORROW)
    by_area = {p.area: p for p in peaks}
    assert [p.area for p in peaks] == ["CA ISO-TAC", "SCE-TAC", "PGE-TAC"]
    assert by_area["CA ISO-TAC"].peak_mw == 51180  # DAM, not the older 2DA 50,950
    assert by_area["CA ISO-TAC"].hour_ending == 18
    assert (by_area["SCE-TAC"].band, by_area["SCE-TAC"].tenants) == ((23000, 48000), 2)
    assert (by_area["PGE-TAC"].band, by_area["PGE-TAC"].tenants) == ((47000, 48000), 1)


def test_peaks_chart_shows_ranges_never_a_level_or_a_tenant() -> None:
    levels = [ThresholdLevel("tenant-0f3a9c", "SCE-TAC", 23456),
              ThresholdLevel("tenant-77aa01", "SCE-TAC", 23999),
              ThresholdLevel("tenant-0f3a9c", "CA ISO-TAC", 48123)]
    chart = peaks_chart(area_peaks(hw.heatwave_conditions(), levels, TOMORROW), TOMORROW)
    root = svg_of(chart)
    text = etree.tostring(root, encoding="unicode")
    for secret in ("23,456", "23456", "23,999", "48,123", "48123", "tenant-"):
        assert secret not in text, secret
    assert chart.summary == (
        "CA ISO-TAC 51,180 MW, above the 48,000 MW\u201349,000 MW range of thresholds set by "
        "1 tenant; SCE-TAC 24,410 MW, above the 23,000 MW\u201324,000 MW range of thresholds "
        "set by 2 tenants.")
    assert legend(root) == ["Forecast peak", "Tenants' thresholds (range)"]
    assert axis(root, "y") == ["CA ISO-TAC 51,180", "SCE-TAC 24,410"]
    bars, bands = root.findall(f".//{SVG}g[@class='plot']//{SVG}g[@class='series serie-0 "
                               f"color-0']/{SVG}path"), root.findall(
        f".//{SVG}g[@class='plot']//{SVG}g[@class='series serie-1 color-1']/{SVG}path")
    assert len(bars) == 2 and len(bands) == 2


def test_peaks_without_thresholds_or_forecasts() -> None:
    chart = peaks_chart(area_peaks(hw.heatwave_conditions(), [], TOMORROW), TOMORROW)
    assert "SCE-TAC 24,410 MW, no tenant threshold" in chart.summary
    empty = peaks_chart(area_peaks([], [], TOMORROW), TOMORROW)
    assert empty.svg is None and empty.summary.startswith("No data")


def test_margin_days_take_the_latest_outlook_of_the_next_seven_days() -> None:
    older = hw.margin(date(2022, 9, 8), 9999, observed_at=hw.pt(5, 9))
    days = margin_days([older, *hw.heatwave_conditions(),
                        hw.margin(date(2022, 9, 5), -5000), hw.margin(date(2022, 9, 13), -1)],
                       TODAY)
    assert [d.day for d in days] == [TODAY + timedelta(days=i) for i in range(7)]
    assert [d.margin_mw for d in days][:3] == [-1250, -640, 880]
    assert [d.shortfall for d in days] == [True, True, False, False, False, False, False]


def test_margins_chart_marks_the_shortfalls() -> None:
    chart = margins_chart(margin_days(hw.heatwave_conditions(), TODAY))
    root = svg_of(chart)
    bars = root.findall(f".//{SVG}g[@class='bar']")
    assert len(bars) == 7
    marked = [b for b in bars if b.find(f"{SVG}desc[@class='label']") is not None]
    assert [b.find(f"{SVG}desc[@class='label']").text for b in marked] == ["shortfall"] * 2
    assert all(SHORTFALL in b.get("style") for b in marked)
    assert all(SHORTFALL not in b.get("style") for b in bars if b not in marked)
    printed = [t.text for t in root.iterfind(f".//{SVG}text[@class='value']")]
    assert printed[:3] == ["\u22121,250", "\u2212640", "880"]
    assert chart.summary.startswith("2 of 7 days with a shortfall (Tue Sep 6, Wed Sep 7); "
                                    "lowest \u22121,250 MW on Tue Sep 6 at 19:05 PDT.")
    assert margins_chart(()).svg is None


def test_timeline_keeps_what_meets_the_last_24_and_next_48_hours() -> None:
    now = hw.NOW
    far = hw.notice("caiso.notice:far", Kind.CAISO_EEA, Severity.WATCH, now + timedelta(
        hours=49), now + timedelta(hours=52), status=Status.SCHEDULED, level="WATCH")
    gone = hw.notice("caiso.notice:gone", Kind.CAISO_RMO, Severity.ADVISORY,
                     now - timedelta(hours=40), now - timedelta(hours=25))
    open_now = [c for c in hw.heatwave_conditions()
                if c.status in (Status.ACTIVE, Status.SCHEDULED)]
    tl = timeline([*open_now, far, gone], now)
    assert (tl.start, tl.end) == (now - timedelta(hours=24), now + timedelta(hours=48))
    labels = [b.label for b in tl.bars]
    assert labels == ["CAISO Transmission Emergency", "SCE BIP BIP-30 event", "CAISO EEA 1",
                      "CAISO Flex Alert", "CAISO EEA 3 step 1", "CAISO EEA Watch"]
    bip = tl.bars[1]
    assert bip.end is None and bip.severity == Severity.EMERGENCY


def test_timeline_chart_bars_by_severity_and_now() -> None:
    open_now = [c for c in hw.heatwave_conditions()
                if c.status in (Status.ACTIVE, Status.SCHEDULED)]
    chart = timeline_chart(timeline(open_now, hw.NOW))
    root = svg_of(chart)
    assert legend(root) == ["CRITICAL", "EMERGENCY", "WARNING", "WATCH", "ADVISORY", "Now"]
    css = root.find(f"{SVG}defs/{SVG}style").text
    for colour in (SEVERITY_COLOURS[s] for s in (Severity.CRITICAL, Severity.WATCH)):
        assert colour in css
    segments = root.findall(f".//{SVG}path[@class='line reactive nofill']")
    assert len(segments) == 6 + 1  # a bar per event, and the line at now
    assert ("CAISO EEA 3 step 1 (CRITICAL, active) Tue Sep 6 17:17 PDT \u2013 20:00 PDT"
            in chart.summary)
    assert "SCE BIP BIP-30 event (EMERGENCY, active) Tue Sep 6 16:00 PDT \u2013 end TBD" in (
        chart.summary)
    assert "EEA 3 step 1" in axis(root, "y")
    assert axis(root, "x") == ["Tue 6", "Wed 7", "Thu 8"]


def test_nothing_around_now() -> None:
    chart = timeline_chart(timeline([], hw.NOW))
    assert chart.svg is None and chart.summary.startswith("No active or scheduled")


def test_build_charts_in_page_order() -> None:
    charts = build_charts(day_of_readings(), hw.status(), [], hw.heatwave_conditions(), [],
                          hw.NOW)
    assert [c.key for c in charts] == ["demand", "peaks", "margins", "timeline"]
    assert [c.svg is not None for c in charts] == [True, True, True, False]


async def test_threshold_levels_are_read_again_only_after_a_subscription_changed(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    active = subscriptions.active

    async def counted(conn: AsyncConnection) -> list[StoredSubscription]:
        nonlocal reads
        reads += 1
        return await active(conn)

    monkeypatch.setattr(subscriptions, "active", counted)

    def spec(level: float) -> SubscriptionSpec:
        return SubscriptionSpec.model_validate({
            "name": "n", "channel": {"type": "sms", "phone": "+16265550142"},
            "match": {"kinds": ["caiso.peak_forecast"], "thresholds": [
                {"kind": "caiso.peak_forecast", "area": "SCE-TAC", "above": level}]}})

    cache = ThresholdCache()
    async with store.begin() as conn:
        tenant, _ = await tenants.create_tenant(conn, "t", None, hw.NOW)
        sub, _ = await subscriptions.create(conn, tenant.id, spec(23000), hw.NOW)
        assert [lv.mw for lv in await cache.get(conn)] == [23000]
        assert [lv.mw for lv in await cache.get(conn)] == [23000]
        assert reads == 1
        await subscriptions.set_status(conn, sub.id, "paused", hw.NOW + timedelta(seconds=1))
        assert await cache.get(conn) == []
        await subscriptions.create(conn, tenant.id, spec(24000), hw.NOW + timedelta(seconds=2))
        assert [lv.mw for lv in await cache.get(conn)] == [24000]
        assert reads == 3


def test_a_window_past_midnight_names_both_days() -> None:
    overnight = hw.notice("caiso.notice:night", Kind.CAISO_TRANSMISSION_EMERGENCY,
                          Severity.WARNING, hw.pt(6, 22), hw.pt(7, 2), notice_no="x")
    chart = timeline_chart(timeline([overnight], hw.NOW))
    assert chart.summary == ("At 17:30 PDT: CAISO Transmission Emergency (WARNING, active) "
                             "Tue Sep 6 22:00 PDT \u2013 Wed Sep 7 02:00 PDT.")
