"""Every kind, in every channel, says the same thing: one condition of each `Kind` rendered as
SMS, email, decide's summary (the webhook's `summary`), the status page, the detail page and
the calendar feed carries the same label, window and reference, in Pacific time, the SMS in
one GSM-7 segment."""

from __future__ import annotations

from datetime import UTC, date, datetime

import icalendar
import pytest
from pydantic import SecretStr

from consumers.decide.stages.summary import summary
from consumers.notifiers.email import EmailConfig, build_message
from consumers.notifiers.sms_text import is_single_segment, render_sms, to_gsm7
from monitor import calendar_feed
from monitor.api.status_view import NOTICE_KINDS, event_row
from monitor.attributes import (
    ATTRIBUTE_MODELS,
    DemandAttributes,
    DrEventAttributes,
    KindAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    SourceHealthAttributes,
    StatusAttributes,
)
from monitor.clock import PACIFIC, ManualClock
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.links import detail_url
from monitor.notifications import (
    EmailChannel,
    Notification,
    NotificationItem,
    SmsChannel,
    Transition,
)
from monitor.store.calendar_feeds import WINDOWED_KINDS, Entry
from monitor.wording import When, Wording, public_summary, wording

NOW = datetime(2022, 9, 6, 17, 30, tzinfo=PACIFIC)
# 17:17-20:00 PDT on 9/6: written in UTC, where the day is already 9/7.
EVENING = Window(start=datetime(2022, 9, 7, 0, 17, tzinfo=UTC),
                 end=datetime(2022, 9, 7, 3, 0, tzinfo=UTC))
DAY = Window(start=datetime(2022, 9, 6, 7, tzinfo=UTC), end=datetime(2022, 9, 7, 7, tzinfo=UTC))
LINK = detail_url("https://alerts.cleanpoweralliance.org", "f" * 40)
EMAIL = EmailConfig(host="127.0.0.1", port=25, sender="alerts@capmon.example",
                    public_url="https://alerts.example.org", link_secret=SecretStr("k" * 32))

_NOTICE_LEVEL = {Kind.CAISO_EEA: "3", Kind.CAISO_LEGACY: "STAGE 2"}
# One instance of every attribute model, the window its producers give it, and its regions.
SAMPLES: dict[type[KindAttributes], tuple[KindAttributes, Window, tuple[str, ...]]] = {
    NoticeAttributes: (NoticeAttributes(notice_no="202202696"), EVENING, ("CAISO Grid",)),
    StatusAttributes: (StatusAttributes(grid_status=("Energy Emergency Alert 3", "RMO"),
                                        current_reserve_mw=-1234.0, current_demand_mw=52061.0),
                       Window(), ("CAISO Grid",)),
    DemandAttributes: (DemandAttributes(operating_day=date(2022, 9, 6), current_mw=52061.0,
                                        day_ahead_peak_mw=51276.0), DAY, ("CAISO Grid",)),
    PeakForecastAttributes: (PeakForecastAttributes(area="SCE-TAC", trade_date=date(2022, 9, 6),
                                                    market_run="DAM", peak_mw=24410.0,
                                                    hour_ending=17), DAY, ("SCE-TAC",)),
    RaOutlookAttributes: (RaOutlookAttributes(
        operating_day=date(2022, 9, 6), min_margin_mw=880.0,
        min_margin_interval_end=datetime(2022, 9, 7, 2, 5, tzinfo=UTC)), DAY, ("CAISO Grid",)),
    DrEventAttributes: (DrEventAttributes(program="SDP", product="SDP", event_key="sdp-0906",
                                          sublaps=("SCEC", "SCLD")), EVENING,
                        ("SCE-TAC", "SCEC", "SCLD")),
    SourceHealthAttributes: (SourceHealthAttributes(source="caiso-notices", reason="dns",
                                                    last_error="cannot resolve imap.example"),
                             Window(start=EVENING.start), ()),
}


def condition(kind: Kind) -> Condition:
    model = ATTRIBUTE_MODELS[kind.value]
    attributes, window, regions = SAMPLES[model]
    if isinstance(attributes, NoticeAttributes):
        attributes = attributes.model_copy(update={"level": _NOTICE_LEVEL.get(kind)})
    return Condition(id=f"{kind.value}:sample", kind=kind, severity=Severity.WARNING,
                     status=Status.ACTIVE, window=window, regions=regions,
                     attributes=attributes, revision=1, observed_at=NOW)


def notification(c: Condition, transition: Transition, channel: str) -> Notification:
    items = (NotificationItem(transition=transition, condition=c),)
    return Notification(
        key="f" * 40, tenant_id="t", subscription_id="s", subscription_name="desk",
        channel=SmsChannel(phone="+16265550100") if channel == "sms" else EmailChannel(
            address="desk@cca.example"),
        decided_at=NOW, severity=c.severity, items=items, summary=summary(items, NOW))


def said(words: Wording, transition: Transition) -> list[str]:
    """What every channel must carry of these words."""
    headline = words.headline(transition)
    if words.sentences:
        return [headline]
    if words.when.day:
        return [words.named()]
    out = [words.label]
    if transition not in (Transition.ENDED, Transition.CANCELLED):
        out.append(words.when.short())
    return [s for s in out if s]


@pytest.mark.parametrize("transition", [Transition.ISSUED, Transition.UPDATED,
                                        Transition.STARTED, Transition.REMINDER,
                                        Transition.ENDED, Transition.CANCELLED])
@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_says_the_same_in_every_channel(kind: Kind, transition: Transition) -> None:
    c = condition(kind)
    words = wording(c, NOW)
    assert words.label and words.headline(transition)
    sms = render_sms(notification(c, transition, "sms"), LINK)
    assert is_single_segment(sms) and sms.endswith(" " + LINK), sms
    mail = build_message(notification(c, transition, "email"), "desk@cca.example", EMAIL,
                         ManualClock(NOW))
    plain = mail.get_body(("plain",))
    assert plain is not None
    body = plain.get_content()
    line = summary((NotificationItem(transition=transition, condition=c),), NOW)
    public = public_summary(notification(c, transition, "sms"))
    for text in said(words, transition):
        assert to_gsm7(text) in sms, (text, sms)
        assert text in line and text in public and text in body, text
        assert text in str(mail["Subject"]), text
    if words.reference:
        assert words.reference in sms and words.reference in line and words.reference in body
    if words.when.known:
        assert words.when.long() in body
    if c.window.start is not None and not words.when.day:
        # Pacific: the hour read in California, never the UTC one.
        pacific = f"{c.window.start.astimezone(PACIFIC):%H:%M}"
        utc = f"{c.window.start.astimezone(UTC):%H:%M}"
        assert pacific in body and utc not in sms and utc not in line
        if any(pacific in text for text in said(words, transition)):
            assert pacific in sms and pacific in line
    assert "UTC" not in body and "+00:00" not in body
    for text in (sms, line, public, body):
        assert "SDP SDP" not in text


@pytest.mark.parametrize("kind", [*NOTICE_KINDS, Kind.SCE_DR_EVENT])
def test_the_status_page_lists_the_same_words(kind: Kind) -> None:
    c = condition(kind)
    words = wording(c, NOW)
    row = event_row(c, NOW)
    assert row.name == words.label
    assert row.window == words.when.long() == "Tue Sep 6 2022, 17:17 PDT \u2013 20:00 PDT"
    assert row.reference == words.reference != ""
    assert row.regions == words.where.text() != ""


@pytest.mark.parametrize("kind", WINDOWED_KINDS)
def test_the_calendar_feed_carries_the_same_words(kind: Kind) -> None:
    c = condition(kind)
    words = wording(c, NOW)
    cal = icalendar.Calendar.from_ical(calendar_feed.render([Entry(c, 0)], name="desk", now=NOW))
    [event] = cal.walk("VEVENT")
    assert str(event["summary"]) == words.label
    description = str(event["description"])
    assert words.when.long() in description and words.reference in description
    assert str(event["location"]) == words.where.text()
    assert event.decoded("dtstart") == EVENING.start
    assert event["dtstart"].params["TZID"] == "America/Los_Angeles"


def test_the_labels_and_references_read_as_a_scheduler_expects() -> None:
    def line(kind: Kind) -> str:
        return wording(condition(kind), NOW).headline(Transition.ISSUED)

    assert line(Kind.CAISO_EEA) == "CAISO EEA 3 issued 9/6 17:17-20:00 PT"
    assert line(Kind.CAISO_LEGACY) == "CAISO Stage 2 issued 9/6 17:17-20:00 PT"
    assert line(Kind.CAISO_FLEX_ALERT) == "CAISO Flex Alert issued 9/6 17:17-20:00 PT"
    assert line(Kind.SCE_DR_EVENT) == "SCE SDP event issued 9/6 17:17-20:00 PT"
    assert line(Kind.CAISO_RA_OUTLOOK) == "CAISO RA margin 9/6 issued: min 880 MW at 19:05"
    assert line(Kind.SOURCE_HEALTH) == "capmon cannot see CAISO notices since 9/6 17:17 PT"
    eea = wording(condition(Kind.CAISO_EEA), NOW)
    assert (eea.reference, eea.where.places) == ("#202202696", ("all CAISO",))
    dr = wording(condition(Kind.SCE_DR_EVENT), NOW)
    assert (dr.reference, dr.where.places) == ("event sdp-0906", ("SCEC", "SCLD"))
    # Once over, a window is no longer news; a day still names the condition.
    assert eea.headline(Transition.ENDED) == "CAISO EEA 3 ended, all clear"
    ra = wording(condition(Kind.CAISO_RA_OUTLOOK), NOW)
    assert ra.headline(Transition.ENDED) == "CAISO RA margin 9/6 ended, all clear"


def test_the_year_is_said_when_it_is_not_the_readers() -> None:
    history = condition(Kind.SCE_DR_EVENT).model_copy(update={
        "window": Window(), "attributes": DrEventAttributes(program="BIP",
                                                            event_date=date(2020, 9, 6))})
    assert wording(history, NOW).when.short() == "9/6/2020"
    assert wording(history, NOW).headline(Transition.ISSUED) == "SCE BIP event 9/6/2020 issued"
    new_year = Window(start=datetime(2023, 1, 1, 6, tzinfo=UTC),
                      end=datetime(2023, 1, 1, 10, tzinfo=UTC))
    eea = condition(Kind.CAISO_EEA).model_copy(update={"window": new_year})
    assert wording(eea, NOW).when.short() == "12/31/2022 22:00-1/1/2023 02:00 PT"
    assert wording(eea, datetime(2023, 1, 1, 12, tzinfo=UTC)).when.short() == (
        "12/31/2022 22:00-1/1/2023 02:00 PT")
    assert wording(condition(Kind.CAISO_EEA), NOW).when.short() == "9/6 17:17-20:00 PT"
    assert When(day=date(2022, 9, 7)).long() == "Wed Sep 7 2022"
