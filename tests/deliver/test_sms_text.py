"""SMS text fits one GSM-7 segment for every kind at its longest realistic values, and for
every notice of the real 2022 heat wave, with the link to the details always intact."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from consumers.notifiers.sms_text import SEGMENT, is_single_segment, render_sms, to_gsm7
from monitor.attributes import (
    DemandAttributes,
    DrEventAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    SourceHealthAttributes,
    StatusAttributes,
)
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.links import detail_url
from monitor.notifications import Notification, NotificationItem, SmsChannel, Transition

FIXTURE = Path(__file__).parents[1] / "fixtures" / "deliver" / \
    "heatwave_2022-08-31_to_09-09_timeline.derived.json"
# A long-ish real-world public URL: the link is 52 characters.
LINK = detail_url("https://alerts.cleanpoweralliance.org", "f" * 40)
ALL_REGIONS = ("CAISO Grid", "Northern CA Region", "Southern CA Region", "VEA Region",
               "South OC San Diego Region")
OBS = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)
TWO_DAYS = Window(start=datetime(2022, 9, 6, 23, 0, tzinfo=UTC),
                  end=datetime(2022, 9, 8, 4, 59, tzinfo=UTC))

_TYPES = {"RMO": (Kind.CAISO_RMO, None), "FLEX_ALERT": (Kind.CAISO_FLEX_ALERT, None),
          "EEA_WATCH": (Kind.CAISO_EEA, "WATCH"), "EEA1": (Kind.CAISO_EEA, "1"),
          "EEA2": (Kind.CAISO_EEA, "2"), "EEA3": (Kind.CAISO_EEA, "3"),
          "TRANSMISSION_EMERGENCY": (Kind.CAISO_TRANSMISSION_EMERGENCY, None)}


def notify(*conditions: Condition, transition: Transition = Transition.ISSUED,
           acknowledgeable: bool = False) -> Notification:
    return Notification(
        key="f" * 40, tenant_id="t", subscription_id="s", channel=SmsChannel(phone="+1626"),
        decided_at=OBS, severity=max(c.severity for c in conditions),
        items=tuple(NotificationItem(transition=transition, condition=c) for c in conditions),
        summary="x", acknowledgeable=acknowledgeable)


def heatwave() -> list[Condition]:
    out = []
    for i, n in enumerate(json.loads(FIXTURE.read_text())["notices"]):
        kind, level = _TYPES[n["type"]]
        out.append(Condition(
            id=f"caiso.notice:{n['notice_no'] or i}", kind=kind, severity=Severity.WARNING,
            status=Status.ACTIVE,
            window=Window(start=datetime.fromisoformat(n["effective_start"]),
                          end=datetime.fromisoformat(n["effective_end"])
                          if n.get("effective_end") else None),
            regions=(n["region"],),
            attributes=NoticeAttributes(
                notice_no=n["notice_no"], level=level, reason=n["reason"],
                supersedes=(n["supersedes_notice_no"],) if n.get("supersedes_notice_no") else ()),
            revision=i,
            observed_at=datetime.fromisoformat(n["issued_at"] or n["effective_start"])))
    return out


@pytest.mark.parametrize("transition", list(Transition))
def test_every_2022_heatwave_notice_fits_one_segment(transition: Transition) -> None:
    conditions = heatwave()
    assert len(conditions) == 45
    for c in conditions:
        text = render_sms(notify(c, transition=transition), LINK)
        assert is_single_segment(text), text
        assert text.endswith(" " + LINK)
        assert "..." not in text, text  # the head (what and when) is never cut
        a = c.attributes
        assert isinstance(a, NoticeAttributes)
        if a.notice_no:  # Flex Alerts have none
            assert f"#{a.notice_no}" in text, text


def test_eea3_text_reads_as_a_scheduler_expects() -> None:
    [c] = [c for c in heatwave() if c.id == "caiso.notice:202202696"]
    text = render_sms(notify(c), LINK)
    assert text == f"CAISO EEA 3 issued 9/6 17:17-20:00 PT, #202202696, all CAISO {LINK}"



def test_an_acknowledgeable_eea3_says_how_to_take_it() -> None:
    [c] = [c for c in heatwave() if c.id == "caiso.notice:202202696"]
    text = render_sms(notify(c, acknowledgeable=True), LINK)
    assert text == (f"CAISO EEA 3 issued 9/6 17:17-20:00 PT, #202202696, all CAISO "
                    f"Reply ACK FFFF {LINK}")


def test_a_notice_superseded_in_place_does_not_replace_itself() -> None:
    """The CAISO producer files a superseding notice under the superseded one's id, so its
    `supersedes` can name the notice's own number: that reads as an update, not "#X replaces
    #X"; a notice that superseded another still says which."""
    in_place = Condition(
        id="caiso.notice:202202705", kind=Kind.CAISO_EEA, severity=Severity.EMERGENCY,
        status=Status.ACTIVE, window=Window(start=datetime(2022, 9, 8, 3, 11, tzinfo=UTC),
                                            end=datetime(2022, 9, 8, 3, 30, tzinfo=UTC)),
        regions=("CAISO Grid",),
        attributes=NoticeAttributes(notice_no="202202705", level="2", supersedes=("202202705",)),
        revision=1, observed_at=OBS)
    text = render_sms(notify(in_place, transition=Transition.UPDATED), LINK)
    assert text == f"CAISO EEA 2 updated 9/7 20:11-20:30 PT, #202202705, all CAISO {LINK}"
    other = in_place.model_copy(update={"attributes": NoticeAttributes(
        notice_no="202202710", level="2", supersedes=("202202705",))})
    assert "replaces #202202705" in render_sms(notify(other), LINK)


LONGEST: list[Condition] = [
    Condition(id="caiso.notice:202202696", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
              status=Status.ACTIVE, window=TWO_DAYS, regions=ALL_REGIONS[1:],
              attributes=NoticeAttributes(notice_no="202202696", level="3", step=2,
                                          supersedes=("202202695",)),
              revision=1, observed_at=OBS),
    Condition(id="caiso.notice:202002001", kind=Kind.CAISO_LEGACY, severity=Severity.EMERGENCY,
              status=Status.ACTIVE, window=TWO_DAYS, regions=ALL_REGIONS[1:],
              attributes=NoticeAttributes(notice_no="202002001", level="STAGE 3"),
              revision=1, observed_at=OBS),
    Condition(id="caiso.notice:202404001", kind=Kind.CAISO_TRANSMISSION_EMERGENCY,
              severity=Severity.WARNING, status=Status.ACTIVE, window=TWO_DAYS,
              regions=("South OC San Diego Region", "VEA Region"),
              attributes=NoticeAttributes(notice_no="202404001"), revision=1, observed_at=OBS),
    Condition(id="caiso.flex:6", kind=Kind.CAISO_FLEX_ALERT, severity=Severity.WATCH,
              status=Status.SCHEDULED, window=TWO_DAYS, regions=ALL_REGIONS,
              attributes=NoticeAttributes(flex_alert_id=6), revision=1, observed_at=OBS),
    Condition(id="sce.dr:cbp-2022-09-06", kind=Kind.SCE_DR_EVENT, severity=Severity.EMERGENCY,
              status=Status.ACTIVE, window=Window(start=TWO_DAYS.start),
              attributes=DrEventAttributes(program="CBP Day-Of", product="CBP-DO 1-6",
                                           sublaps=("SCEC", "SCEN", "SCEW", "SCHD", "SCLD",
                                                    "SCNW")),
              revision=1, observed_at=OBS),
    Condition(id="caiso.status", kind=Kind.CAISO_STATUS, severity=Severity.EMERGENCY,
              status=Status.ACTIVE,
              attributes=StatusAttributes(grid_status=("Energy Emergency Alert 3",
                                                       "Restricted Maintenance Operations"),
                                          current_reserve_mw=-1234.0,
                                          current_demand_mw=52061.0),
              revision=1, observed_at=OBS),
    Condition(id="caiso.demand", kind=Kind.CAISO_DEMAND, severity=Severity.WARNING,
              status=Status.ACTIVE,
              attributes=DemandAttributes(operating_day=date(2022, 9, 6), current_mw=52061.0,
                                          day_ahead_peak_mw=51276.0, todays_peak_mw=52061.0),
              revision=1, observed_at=OBS),
    Condition(id="caiso.peak.tomorrow:2022-09-07", kind=Kind.CAISO_PEAK_FORECAST,
              severity=Severity.WARNING, status=Status.ACTIVE,
              attributes=PeakForecastAttributes(area="CA ISO-TAC", trade_date=date(2022, 9, 7),
                                                market_run="7DA", peak_mw=51276.0,
                                                hour_ending=18),
              revision=1, observed_at=OBS),
    Condition(id="caiso.ra-margin:2026-03-17", kind=Kind.CAISO_RA_OUTLOOK,
              severity=Severity.WARNING, status=Status.ACTIVE,
              attributes=RaOutlookAttributes(
                  operating_day=date(2026, 3, 17), min_margin_mw=-12345.0,
                  min_margin_interval_end=datetime(2026, 3, 18, 2, 55, tzinfo=UTC),
                  forecast_peak_mw=31234.0),
              revision=1, observed_at=OBS),
    Condition(id="source.health:caiso-outlook", kind=Kind.SOURCE_HEALTH,
              severity=Severity.WARNING, status=Status.ACTIVE,
              attributes=SourceHealthAttributes(source="caiso-outlook-stats",
                                                reason="stale: no good parse in 3 intervals",
                                                missed_intervals=12),
              revision=1, observed_at=OBS),
]


@pytest.mark.parametrize("condition", LONGEST, ids=lambda c: c.kind.value)
@pytest.mark.parametrize("transition", [Transition.REMINDER, Transition.CANCELLED])
@pytest.mark.parametrize("acknowledgeable", [False, True])
def test_longest_realistic_values_fit_one_segment(condition: Condition, transition: Transition,
                                                  acknowledgeable: bool) -> None:
    text = render_sms(notify(condition, transition=transition,
                             acknowledgeable=acknowledgeable), LINK)
    assert is_single_segment(text), f"{len(text)}: {text}"
    assert "..." not in text, text
    tail = " Reply ACK FFFF " + LINK if acknowledgeable else " " + LINK
    assert text.endswith(tail), text


def test_every_kind_has_a_longest_case() -> None:
    assert {c.kind for c in LONGEST} == set(Kind) - {Kind.CAISO_RMO}  # RMO: heat wave set


def test_grouped_notification_leads_with_the_most_severe() -> None:
    eea3, flex = LONGEST[0], LONGEST[3]
    text = render_sms(notify(flex, eea3), LINK)
    assert text.startswith("CAISO EEA 3 step 2") and "+1 more" in text
    assert len(text) <= SEGMENT


def test_non_gsm_characters_are_replaced_not_sent() -> None:
    assert to_gsm7("Don\u2019t \u201cpanic\u201d \u2013 95\u00b0F \U0001f525") == \
        "Don't \"panic\" - 95 degF ?"
    assert is_single_segment(to_gsm7("\u20ac[x]{y}~^|\\"))


SEEN = datetime(2022, 9, 6, 16, 47, tzinfo=UTC)
BLIND = Condition(
    id="source.health:caiso-notices", kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
    status=Status.ACTIVE, window=Window(start=SEEN),
    attributes=SourceHealthAttributes(source="caiso-notices", reason="dns",
                                      last_error="cannot resolve imap.cpa.example"),
    revision=1, observed_at=SEEN)


def test_capmon_says_what_it_cannot_see_and_when_it_sees_again() -> None:
    assert render_sms(notify(BLIND), LINK) == (
        "capmon cannot see CAISO notices since 9/6 09:47 PT, cannot resolve "
        f"imap.cpa.example {LINK}")
    again = BLIND.model_copy(update={
        "status": Status.ENDED, "window": Window(start=SEEN, end=datetime(2022, 9, 6, 17, 12,
                                                                         tzinfo=UTC))})
    assert render_sms(notify(again, transition=Transition.ENDED), LINK) == (
        f"capmon sees CAISO notices again (blind 9/6 09:47-10:12 PT) {LINK}")
    assert render_sms(notify(BLIND, transition=Transition.REMINDER), LINK).startswith(
        "capmon still cannot see CAISO notices since 9/6 09:47 PT")


def test_an_sdp_event_names_its_program_once() -> None:
    sdp = Condition(
        id="sce.dr:sdp-1", kind=Kind.SCE_DR_EVENT, severity=Severity.WARNING,
        status=Status.ACTIVE, window=Window(start=datetime(2022, 9, 6, 23, tzinfo=UTC),
                                            end=datetime(2022, 9, 7, 3, tzinfo=UTC)),
        attributes=DrEventAttributes(utility="SCE", program="SDP", product="SDP"),
        revision=1, observed_at=OBS)
    assert render_sms(notify(sdp, transition=Transition.UPDATED), LINK) == (
        f"SCE SDP event updated 9/6 16:00-20:00 PT {LINK}")
