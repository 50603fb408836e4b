"""What the status page computes, as pure functions over conditions (no store, no HTTP)."""

from __future__ import annotations

from datetime import date, timedelta

from monitor.api import status_view as sv
from monitor.events import Kind, Severity, Status
from monitor.wording import When
from tests.status import heatwave as hw


def test_reserve_state_needs_both_numbers() -> None:
    half = sv.grid_status(hw.status(required_reserve_mw=None), hw.NOW)
    assert half.reserve == "2,100 MW" and half.required_reserve == "unknown"
    assert half.reserve_state == "unknown"
    ok = sv.grid_status(hw.status(current_reserve_mw=3000, required_reserve_mw=3000), hw.NOW)
    assert ok.reserve_state == "above requirement"


def test_status_with_no_labels_is_unknown_not_normal() -> None:
    view = sv.grid_status(hw.status(grid_status=[]), hw.NOW)
    assert view.labels == "unknown"


def test_demand_falls_back_on_stats_when_demand_csv_is_missing() -> None:
    d = sv.demand(hw.status(), None, hw.NOW)
    assert d.current == "50,230 MW" and d.forecast_peak == "51,276 MW"
    assert d.peak_so_far == "52,061 MW at 16:57 PDT"
    none = sv.demand(None, None, hw.NOW)
    assert none.current == none.forecast_peak == none.percent_of_peak == "unknown"
    assert none.fresh.as_of == "no data" and none.fresh.unknown == ""


def test_tomorrow_falls_back_on_todays_outlook_for_the_system_only() -> None:
    rows = sv.tomorrow_peaks([], hw.status(), date(2022, 9, 6))
    system, sce = rows
    assert (system.area, system.peak, system.vintage) == ("CA ISO-TAC", "51,180 MW",
                                                          "Today's Outlook")
    assert (sce.area, sce.peak) == ("SCE-TAC", "no data")
    # A zero from stats.txt means "not published", as CAISO's own page reads it.
    rows = sv.tomorrow_peaks([], hw.status(tomorrows_forecast_peak_mw=0), date(2022, 9, 6))
    assert rows[0].peak == "no data"


def test_latest_vintage_of_the_same_run_wins() -> None:
    old = hw.peak("SCE-TAC", "DAM", 24000, observed_at=hw.NOW - timedelta(hours=2))
    new = hw.peak("SCE-TAC", "DAM", 24410)
    rows = sv.tomorrow_peaks([new, old], None, date(2022, 9, 6))
    assert rows[1].peak == "24,410 MW"


def test_ra_margin_labels_are_words() -> None:
    rows, fresh = sv.ra_margins([hw.margin(date(2022, 9, 6), 1999),
                                 hw.margin(date(2022, 9, 7), 2500)], date(2022, 9, 6), hw.NOW)
    assert [r.label for r in rows] == ["tight, lowest of the week", ""]
    assert fresh.as_of == "Tue Sep 6 2022, 17:30 PDT"
    old_rows, old = sv.ra_margins([hw.margin(date(2022, 9, 6), 3000,
                                             observed_at=hw.NOW - timedelta(hours=40))],
                                  date(2022, 9, 6), hw.NOW)
    assert old.as_of == "Mon Sep 5 2022, 01:30 PDT" and old_rows[0].label == "lowest of the week"


def test_legacy_and_watch_names() -> None:
    stage = hw.notice("caiso.notice:202002424", Kind.CAISO_LEGACY, Severity.CRITICAL,
                      hw.pt(6, 18), None, level="STAGE 3", notice_no="202002424")
    watch = hw.notice("caiso.notice:202202694", Kind.CAISO_EEA, Severity.WATCH, hw.pt(7, 16),
                      hw.pt(7, 21), status=Status.SCHEDULED, level="WATCH")
    assert sv.event_row(stage, hw.NOW).name == "CAISO Stage 3"
    assert sv.event_row(stage, hw.NOW).window.endswith("end TBD")
    assert sv.event_row(watch, hw.NOW).name == "CAISO EEA Watch"
    assert sv.event_row(watch, hw.NOW).reference == ""


def test_delivery_health_words() -> None:
    assert sv.delivery_health({}) == "no notifications yet"
    assert sv.delivery_health({"delivered": 3}) == "healthy: no failed or dead deliveries"
    assert sv.delivery_health({"delivered": 3, "failed": 2}).startswith("degraded: 2")
    assert sv.delivery_health({"failed": 2, "dead": 1}) == "ATTENTION: 1 dead-lettered"


def test_times_are_pacific_with_their_zone() -> None:
    assert sv.fmt_time(hw.pt(6, 17, 17)) == "Tue Sep 6 2022, 17:17 PDT"
    assert sv.fmt_time(hw.pt(6, 17, 17).replace(tzinfo=None)) == "Tue Sep 6 2022, 10:17 PDT"
    jan = hw.pt(6, 12).replace(month=1)
    assert sv.fmt_time(jan).endswith("PST")
    assert When(hw.pt(5, 23), hw.pt(6, 1)).long() == (
        "Mon Sep 5 2022, 23:00 PDT \u2013 Tue Sep 6 2022, 01:00 PDT")
