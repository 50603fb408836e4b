"""Constructed conditions and notifications of 2022-09-06 ~17:30 PDT, for the status page tests.

Values follow the real record (EEA 3 202202696 effective 17:17-20:00, 52,061 MW at 16:57,
projected peak 51,276 MW, 9/7 projected 51,180 MW); reserves, SCE-TAC and RA figures are
constructed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.notifications import Notification, NotificationItem, Transition

PT = ZoneInfo("America/Los_Angeles")


def pt(day: int, hh: int, mm: int = 0, month: int = 9) -> datetime:
    return datetime(2022, month, day, hh, mm, tzinfo=PT)


NOW = pt(6, 17, 30)


def cond(cid: str, kind: Kind, attributes: dict[str, Any], *, severity: Severity = Severity.INFO,
         status: Status = Status.ACTIVE, start: datetime | None = None,
         end: datetime | None = None, regions: tuple[str, ...] = ("CAISO Grid",),
         observed_at: datetime = NOW) -> Condition:
    return Condition(id=cid, kind=kind, severity=severity, status=status,
                     window=Window(start=start, end=end), regions=regions, attributes=attributes,
                     revision=revision_at(observed_at), observed_at=observed_at,
                     source_url="http://127.0.0.1/constructed")


def status(observed_at: datetime = NOW, **overrides: Any) -> Condition:
    attrs: dict[str, Any] = {
        "as_of": observed_at, "grid_status": ["Restricted Maintenance Operations", "Flex Alert",
                                              "EEA 3"],
        "label_kinds": ["caiso.rmo", "caiso.flex_alert", "caiso.eea"],
        "current_reserve_mw": 2100, "required_reserve_mw": 2950, "current_demand_mw": 50230,
        "todays_peak_mw": 52061, "todays_peak_at": pt(6, 16, 57),
        "todays_forecast_peak_mw": 51276, "todays_forecast_peak_at": pt(6, 17, 0),
        "tomorrows_forecast_peak_mw": 51180}
    attrs.update(overrides)
    return cond("caiso.status", Kind.CAISO_STATUS, attrs, observed_at=observed_at)


def demand(observed_at: datetime = NOW) -> Condition:
    return cond("caiso.demand:2022-09-06", Kind.CAISO_DEMAND, {
        "operating_day": date(2022, 9, 6), "interval_end": pt(6, 17, 25),
        "current_mw": 50118, "day_ahead_forecast_mw": 50870, "todays_peak_mw": 52061,
        "todays_peak_at": pt(6, 16, 57), "day_ahead_peak_mw": 51276,
        "day_ahead_peak_at": pt(6, 17, 0)}, observed_at=observed_at)


def peak(area: str, run: str, mw: float, day: date = date(2022, 9, 7),
         observed_at: datetime = NOW) -> Condition:
    return cond(f"caiso.peak:{area}:{day}:{run}", Kind.CAISO_PEAK_FORECAST, {
        "area": area, "trade_date": day, "market_run": run, "peak_mw": mw, "hour_ending": 18,
        "vintage": pt(6, 9, 10)}, regions=(area,), observed_at=observed_at)


def margin(day: date, mw: float, observed_at: datetime = NOW) -> Condition:
    return cond(f"caiso.ra-margin:{day}", Kind.CAISO_RA_OUTLOOK, {
        "operating_day": day, "min_margin_mw": mw,
        "min_margin_interval_end": datetime(day.year, day.month, day.day, 19, 5, tzinfo=PT),
        "published": date(2022, 9, 6)}, observed_at=observed_at)


def notice(cid: str, kind: Kind, severity: Severity, start: datetime, end: datetime | None,
           status: Status = Status.ACTIVE, **attrs: Any) -> Condition:
    return cond(cid, kind, {"channel": "email", **attrs}, severity=severity, status=status,
                start=start, end=end)


def heatwave_conditions() -> list[Condition]:
    sep7 = date(2022, 9, 7)
    return [
        status(), demand(),
        peak("CA ISO-TAC", "2DA", 50950, observed_at=pt(5, 9, 15)),
        peak("CA ISO-TAC", "DAM", 51180), peak("SCE-TAC", "DAM", 24410),
        peak("CA ISO-TAC", "DAM", 46000, day=date(2022, 9, 8)),
        *[margin(sep7 + timedelta(days=i - 1), mw) for i, mw in
          enumerate([-1250, -640, 880, 2450, 3900, 5100, 6050])],
        notice("caiso.notice:202202696", Kind.CAISO_EEA, Severity.CRITICAL, pt(6, 17, 17),
               pt(6, 20), notice_no="202202696", level="3", step=1),
        notice("caiso.notice:202202691", Kind.CAISO_EEA, Severity.WARNING, pt(6, 16), pt(6, 21),
               notice_no="202202691", level="1"),
        notice("caiso.notice:202202692", Kind.CAISO_TRANSMISSION_EMERGENCY, Severity.WARNING,
               pt(6, 13, 29), pt(6, 22), notice_no="202202692"),
        notice("caiso.notice:202202694", Kind.CAISO_EEA, Severity.WATCH, pt(7, 16), pt(7, 21),
               status=Status.SCHEDULED, notice_no="202202694", level="WATCH"),
        notice("caiso.flex:2022-09-06", Kind.CAISO_FLEX_ALERT, Severity.ADVISORY, pt(6, 16),
               pt(6, 21), title="Flex alert for 09/06/2022"),
        notice("caiso.notice:202202645", Kind.CAISO_EEA, Severity.WATCH, pt(31, 17, month=8),
               pt(31, 20, month=8), status=Status.ENDED, notice_no="202202645", level="WATCH"),
        cond("sce.dr:bip-20220906", Kind.SCE_DR_EVENT, {
            "program": "BIP", "product": "BIP-30", "interruptible": True,
            "event_key": "bip-20220906", "sublaps": ["SCEC", "SCLD"]},
            severity=Severity.EMERGENCY, start=pt(6, 16), end=None, regions=("SCE-TAC",)),
        cond("source.health:caiso-oasis", Kind.SOURCE_HEALTH, {
            "source": "caiso-oasis", "reason": "server", "missed_intervals": 4,
            "last_success_at": pt(6, 9, 12),
            "last_error": "oasis.caiso.com answered HTTP 503"}, severity=Severity.WARNING,
            start=pt(6, 9, 12), regions=()),
    ]


def notification(key: str, condition: Condition, phone: str = "+16265550142",
                 decided_at: datetime = NOW) -> Notification:
    return Notification(
        key=key, tenant_id="tenant-cpa", subscription_id="sub-cpa-scheduler",
        subscription_name="CPA scheduler phone", channel={"type": "sms", "phone": phone},
        decided_at=decided_at, severity=condition.severity,
        items=(NotificationItem(transition=Transition.ISSUED, condition=condition),),
        summary="CAISO EEA 3 active 17:17-20:00 PT (notice 202202696)")
