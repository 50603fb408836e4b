"""Typed, kind-specific condition attributes (a `Condition`'s `attributes`).

One model per family of kinds. Every field a consumer may rely on is named here, so producers
and decide agree on the contract; a producer that learns something new adds a field here.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class KindAttributes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoticeAttributes(KindAttributes):
    """CAISO notices: EEA Watch/1/2/3, RMO, Transmission Emergency, Flex Alert, legacy stages."""

    notice_no: str | None = None
    # EEA: "WATCH", "1", "2", "3"; legacy: "ALERT", "WARNING", "STAGE 1", "STAGE 2", "STAGE 3".
    level: str | None = None
    step: int | None = Field(default=None, description="EEA 3 step (1 preparing, 2 ordering)")
    title: str | None = None
    reason: str | None = None
    issued_at: AwareDatetime | None = None
    supersedes: tuple[str, ...] = ()
    flex_alert_id: int | None = None
    channel: Literal["email", "flex_api", "stats", "replay"] | None = None


class StatusAttributes(KindAttributes):
    """CAISO Today's Outlook `stats.txt`: labels in effect now, reserves, demand and peaks (MW)."""

    as_of: AwareDatetime | None = None
    grid_status: tuple[str, ...] = ()
    # The notice kinds the labels name (e.g. "caiso.rmo"); unknown labels stay in grid_status.
    label_kinds: tuple[str, ...] = ()
    current_reserve_mw: float | None = None
    required_reserve_mw: float | None = None
    current_demand_mw: float | None = None
    todays_peak_mw: float | None = None
    todays_peak_at: AwareDatetime | None = None
    todays_forecast_peak_mw: float | None = None
    todays_forecast_peak_at: AwareDatetime | None = None
    tomorrows_forecast_peak_mw: float | None = None
    available_capacity_mw: float | None = None


class DemandAttributes(KindAttributes):
    """CAISO `demand.csv`: the latest interval of the operating day (MW)."""

    operating_day: date
    interval_end: AwareDatetime | None = None
    current_mw: float | None = None
    day_ahead_forecast_mw: float | None = None
    hour_ahead_forecast_mw: float | None = None
    todays_peak_mw: float | None = None
    todays_peak_at: AwareDatetime | None = None
    day_ahead_peak_mw: float | None = None
    day_ahead_peak_at: AwareDatetime | None = None
    # The file's own `Time` label of the latest reading (e.g. "17:55"), kept beside the parsed
    # instant because CAISO does not document whether it is an interval start or end.
    interval_label: str | None = None


class PeakForecastAttributes(KindAttributes):
    """A forecast peak for one TAC area and trade date (OASIS SLD_FCST or stats.txt)."""

    area: str
    trade_date: date
    market_run: Literal["DAM", "2DA", "7DA", "RTM", "STATS"]
    peak_mw: float
    hour_ending: int | None = Field(default=None, ge=1, le=25)
    peak_at: AwareDatetime | None = None
    vintage: AwareDatetime | None = Field(default=None, description="when the forecast was made")


class RaOutlookAttributes(KindAttributes):
    """CAISO 7-day resource adequacy outlook for one operating day (MW)."""

    operating_day: date
    min_margin_mw: float
    min_margin_interval_end: AwareDatetime
    ra_capacity_mw: float | None = None
    demand_forecast_mw: float | None = None
    reserve_requirement_mw: float | None = None
    forecast_peak_mw: float | None = None
    forecast_peak_at: AwareDatetime | None = None
    published: date | None = None


class DrEventAttributes(KindAttributes):
    """A utility demand-response event (SCE today; PG&E and SDG&E later)."""

    utility: str = "SCE"
    program: str
    product: str | None = None
    customer_class: Literal["residential", "commercial", "all"] | None = None
    interruptible: bool = False
    event_key: str | None = None
    uuid: str | None = None
    # ALL, SLAP, ABANK, SUBSTATION, DISTRICT, BLOCK (SCE's dispatch location types).
    location_type: str | None = None
    locations: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    sublaps: tuple[str, ...] = ()
    zips: tuple[str, ...] = ()
    # False when the location could not be placed (e.g. BIP block letters): the event is then
    # taken to cover the whole territory.
    location_resolved: bool = True
    # The end shown is an estimate (SDP "Estimated End Time"): it may move.
    estimated_end: bool = False
    # The end was not listed but inferred: the event disappeared from the site at that time.
    end_inferred: bool = False
    issued_at: AwareDatetime | None = None
    notice: Literal["day_ahead", "day_of"] | None = None
    aggregators: tuple[str, ...] = ()
    trigger: str | None = Field(default=None, description="e.g. 'Event Scheduled-Heat Rate'")
    # The local day of the event (history records may have a day and no times).
    event_date: date | None = None
    # A test or measurement-and-evaluation event (SCE's history says so only in comments).
    test_event: bool = False
    comments: str | None = None
    channel: Literal["json", "html", "history", "replay"] | None = None


class SourceHealthAttributes(KindAttributes):
    source: str
    reason: str
    missed_intervals: int = 0
    last_success_at: AwareDatetime | None = None
    # What failed, in words ("cannot resolve www.caiso.com").
    last_error: str | None = None
    # A heartbeat (source "capmon", reason "heartbeat") names the sources it found current
    # and those it cannot see.
    current: tuple[str, ...] = ()
    not_current: tuple[str, ...] = ()


# Filled by kind value so monitor.events can map Kind -> model without an import cycle.
ATTRIBUTE_MODELS: dict[str, type[KindAttributes]] = {
    "caiso.eea": NoticeAttributes,
    "caiso.flex_alert": NoticeAttributes,
    "caiso.rmo": NoticeAttributes,
    "caiso.transmission_emergency": NoticeAttributes,
    "caiso.legacy": NoticeAttributes,
    "caiso.status": StatusAttributes,
    "caiso.demand": DemandAttributes,
    "caiso.peak_forecast": PeakForecastAttributes,
    "caiso.ra_outlook": RaOutlookAttributes,
    "sce.dr_event": DrEventAttributes,
    "source.health": SourceHealthAttributes,
}
