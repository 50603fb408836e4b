"""Notice text in all three formats, and the 2022 heat-wave lifecycle fed in issue order."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from monitor.attributes import NoticeAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status
from producers.caiso_common import PACIFIC
from producers.caiso_notice_text import parse_notice
from producers.caiso_notices import NoticeBook, message_text, parse
from tests.producers.helpers import CAISO_FIXTURES

NOTICES = CAISO_FIXTURES / "notices"
EXCERPTS = (NOTICES / "grid_emergencies_history_excerpts.txt").read_text()
HEATWAVE = sorted((NOTICES / "heatwave_2022").glob("*.eml"))


def pt(*args: int) -> datetime:
    return datetime(*args, tzinfo=PACIFIC).astimezone(UTC)  # type: ignore[misc]


def excerpt(start: str, end: str) -> str:
    """The verbatim report text from the line containing `start` to the one containing `end`."""
    i = EXCERPTS.index(start)
    i = EXCERPTS.rfind("\n", 0, i) + 1
    j = EXCERPTS.index(end, i)
    j = EXCERPTS.find("\n", j)
    return EXCERPTS[i:j]


# -- formats ----------------------------------------------------------------------------------

def test_2025_email_format_transmission_emergency() -> None:
    text = excerpt("Subject\nTransmission Emergency declared for Northern CA Region, effective "
                   "04/30/2025", "Notice issued at: [04/30/2025 18:44:08]")
    n = parse_notice(text)
    assert n.kind is Kind.CAISO_TRANSMISSION_EMERGENCY and n.regions == ("Northern CA Region",)
    assert (n.number, n.sequence) == ("202519676403", "78")
    assert (n.start, n.end) == (pt(2025, 4, 30, 18, 42), pt(2025, 4, 30, 20))
    assert n.issued_at == pt(2025, 4, 30, 18, 44, 8)
    assert n.reason == "High Line Loading in the Rio Oso Area"


def test_2025_rmo_wrapped_event_id_and_2359_is_end_of_day() -> None:
    text = excerpt("Subject\nRestricted Maintenance Operations declared for CAISO Grid",
                   "electric utilities for details about their respective load reduction "
                   "programs. \nPage 7")
    n = parse_notice(text)
    assert n.kind is Kind.CAISO_RMO and n.number == "202506079531"  # wrapped onto its own line
    assert n.end == pt(2025, 1, 22, 0, 0)
    assert n.reason is not None and n.reason.startswith("Forecasted high winds")


def test_2024_ended_follow_up_gives_the_actual_end() -> None:
    declared = excerpt("Transmission Emergency declared for Northern CA Region, effective "
                       "02/04/2024", "Notice issued at: [02/04/2024 17:21:47]")
    ended = excerpt("ENDED: Transmission Emergency for Northern CA Region, effective 02/04/2024",
                    "Notice issued at: [02/04/2024 23:00:00]")
    book = NoticeBook()
    [first] = book.apply(parse_notice(declared), pt(2024, 2, 4, 17, 22))
    assert first.id == "caiso.notice:202436223643" and first.status is Status.ACTIVE
    assert first.window.end == pt(2024, 2, 5)  # declared through 23:59
    [last] = book.apply(parse_notice(ended), pt(2024, 2, 4, 23, 0, 5))
    assert last.id == first.id and last.status is Status.ENDED
    assert last.window.end == pt(2024, 2, 4, 23) and last.revision > first.revision
    assert last.attributes.reason == first.attributes.reason  # type: ignore[attr-defined]


def test_2024_ended_three_days_late() -> None:
    ended = excerpt("ENDED: Transmission Emergency for Northern CA Region, effective 03/01/2024",
                    "Notice issued at: [03/04/2024 20:45:38]")
    n = parse_notice(ended)
    assert n.ended and n.number == "202472682443" and n.end == pt(2024, 3, 4, 20, 44)


def test_2024_eea_watch_and_2023_eea_1() -> None:
    watch = parse_notice(excerpt("EEA Watch declared for CAISO Grid, effective 07/24/2024",
                                 "Reason: Fire threatening"))
    assert (watch.kind, watch.level, watch.number) == (Kind.CAISO_EEA, "WATCH", "202455419651")
    eea1 = parse_notice(excerpt("CAISO EEA 1 NOTICE [202302770]",
                                "Notice issued at: 07/20/2023 19:39"))
    assert (eea1.level, eea1.number, eea1.regions) == ("1", "202302770", ("CAISO Grid",))
    assert (eea1.start, eea1.end) == (pt(2023, 7, 20, 19, 30), pt(2023, 7, 20, 22))
    # `|||` wrap artifacts are removed from the reason.
    assert eea1.reason == ("The ISO is anticipating high loads and temperatures across the "
                           "CAISO Grid.")


def test_2020_legacy_stage_3_with_cancellation() -> None:
    text = excerpt("CAISO Grid STAGE 3 System Emergency Notice [202002424]",
                   "Cancellation issued at: 8/14/2020  20:38:00")
    n = parse_notice(text)
    assert (n.kind, n.level, n.number) == (Kind.CAISO_LEGACY, "STAGE 3", "202002424")
    assert n.start == pt(2020, 8, 14, 18, 36)  # "effective 08/14/2020 at \n18:36"
    assert n.cancelled_at == pt(2020, 8, 14, 20, 38)
    [c] = parse(text.encode(), pt(2020, 8, 14, 20, 40))
    assert c.status is Status.ENDED and c.window.end == pt(2020, 8, 14, 20, 38)
    assert c.severity is Severity.CRITICAL


@pytest.mark.parametrize(("start", "end", "level", "severity"), [
    ("STATEWIDE ALERT NOTICE [202002418]", "Notice issued at: 08/13/2020 14:57", "ALERT",
     Severity.WATCH),
    ("CAISO Grid WARNING NOTICE [202002419]", "Notice issued at: 08/14/2020 11:51", "WARNING",
     Severity.WARNING),
    ("CAISO Grid Stage 2 System Emergency Notice [202002423]",
     "Cancellation issued at : 8/14/2020  21:00:00", "STAGE 2", Severity.EMERGENCY),
])
def test_2020_legacy_levels(start: str, end: str, level: str, severity: Severity) -> None:
    [c] = parse(excerpt(start, end).encode(), pt(2020, 8, 14, 12))
    assert c.kind is Kind.CAISO_LEGACY and c.attributes.level == level  # type: ignore[attr-defined]
    assert c.severity is severity


# The 2000-2006 notices are constructed in the shape of the public ones (fixtures README); each
# window is the one the Grid Emergencies History Report's table lists for that day and stage.
LEGACY = NOTICES / "legacy_2000_2006"


@pytest.mark.parametrize(("name", "level", "severity", "start", "end"), [
    # 2000 table, 5/22/2000: Stage 2 1230-1700.
    ("2000-05-22_stage-2-emergency", "STAGE 2", Severity.EMERGENCY,
     pt(2000, 5, 22, 12, 30), pt(2000, 5, 22, 17)),
    # 2001 table, 1/17/2001: Stage 3 0145-2359; HE24 ends at the next midnight.
    ("2001-01-17_stage-3-emergency", "STAGE 3", Severity.CRITICAL,
     pt(2001, 1, 17, 1, 45), pt(2001, 1, 18)),
    # 2002 table, 7/9/2002: Stage 1 14:40-19:00.
    ("2002-07-09_stage-1-emergency", "STAGE 1", Severity.WARNING,
     pt(2002, 7, 9, 14, 40), pt(2002, 7, 9, 19)),
    # 2006 table, 07/22/06: Stage 1 1312-2000 (effective after HE14 began at 13:00).
    ("2006-07-22_stage-1-electrical-emergency", "STAGE 1", Severity.WARNING,
     pt(2006, 7, 22, 13, 12), pt(2006, 7, 22, 20)),
    # 2006 table, 07/24/06: Stage 2 1300-2100.
    ("2006-07-24_stage-2-electrical-emergency", "STAGE 2", Severity.EMERGENCY,
     pt(2006, 7, 24, 13), pt(2006, 7, 24, 21)),
])
def test_2000_to_2006_stage_notices_with_hour_ending_windows(
        name: str, level: str, severity: Severity, start: datetime, end: datetime) -> None:
    raw = (LEGACY / f"{name}.constructed.txt").read_bytes()
    [c] = parse(raw, pt(2026, 1, 1))
    assert c.kind is Kind.CAISO_LEGACY and c.attributes.level == level  # type: ignore[attr-defined]
    assert c.severity is severity and c.regions == ("CAISO Grid",)
    assert (c.window.start, c.window.end) == (start, end)
    assert c.status is Status.ENDED
    # No number and no issue time in these texts: the id is the type and the start.
    assert c.id == f"caiso.notice:legacy-stage{level[-1]}-{start.astimezone(PACIFIC):%Y%m%d%H%M}"


def test_legacy_stage_2_that_warns_of_stage_3_stays_stage_2() -> None:
    n = parse_notice((LEGACY / "2000-05-22_stage-2-emergency.constructed.txt").read_text())
    assert n.level == "STAGE 2" and n.reason is not None and "Stage 3" in n.reason


def test_legacy_stage_notice_in_effect_before_its_first_hour() -> None:
    # Constructed: declared at 09:45 for HE14-HE21, the window starts with HE14 at 13:00.
    n = parse_notice("STAGE 2 ELECTRICAL EMERGENCY Notice The California ISO has declared a "
                     "Stage 2 Electrical Emergency. Effective 07/24/2006 at 09:45, from Hour "
                     "Ending 14 through Hour Ending 21.")
    assert (n.start, n.end) == (pt(2006, 7, 24, 13), pt(2006, 7, 24, 21))
    overnight = parse_notice("STAGE 1 EMERGENCY NOTICE Effective 12/07/2000 at 22:00, from "
                             "Hour Ending 23 through Hour Ending 2.")
    assert (overnight.start, overnight.end) == (pt(2000, 12, 7, 22), pt(2000, 12, 8, 2))


@pytest.mark.parametrize("text", [
    "STAGE 2 EMERGENCY NOTICE Effective 05/22/2000 at 12:30, from Hour Ending 0 through "
    "Hour Ending 17.",
    "STAGE 2 EMERGENCY NOTICE Effective 05/22/2000 at 12:30, from Hour Ending 13 through "
    "Hour Ending 26.",
    "STAGE 2 EMERGENCY NOTICE from Hour Ending 13 through Hour Ending 17.",
    "STAGE 2 EMERGENCY NOTICE Effective 05/22/2000 at 18:30, from Hour Ending 13 through "
    "Hour Ending 17.",
])
def test_legacy_hour_ending_window_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_notice(text)


def test_2020_flex_alert_prose() -> None:
    text = excerpt("The California ISO has issued a Flex Alert for the CAISO Grid effective "
                   "Friday, August 14, 2020", "to avoid")
    [c] = parse(text.encode(), pt(2020, 8, 14, 9))
    assert c.kind is Kind.CAISO_FLEX_ALERT and c.status is Status.SCHEDULED
    assert (c.window.start, c.window.end) == (pt(2020, 8, 14, 15), pt(2020, 8, 14, 22))
    assert c.id == "caiso.notice:flex-202008141500"


@pytest.mark.parametrize("text", [b"", b"Hello, lunch on Friday?",
                                  b"CAISO EEA 3 NOTICE [202202696] Reason: none",
                                  b"CAISO EEA 2 NOTICE effective 09/06/2022 21:00 through "
                                  b"09/06/2022 16:00."])
def test_not_a_notice_is_a_parse_error(text: bytes) -> None:
    with pytest.raises(ParseError):
        parse(text, pt(2022, 9, 6, 12))


# -- the heat wave ----------------------------------------------------------------------------

def issued(path: object) -> datetime:
    import email.utils
    raw = path.read_bytes()  # type: ignore[attr-defined]
    m = re.search(rb"^Date: (.+)$", raw, re.M)
    assert m
    return email.utils.parsedate_to_datetime(m.group(1).decode().strip()).astimezone(UTC)


def replay(until: datetime) -> tuple[NoticeBook, list[Condition]]:
    """Feed every notice issued up to `until` in issue order, ticking the clock between."""
    book = NoticeBook()
    out: list[Condition] = []
    for path in HEATWAVE:
        at = issued(path)
        if at > until:
            break
        out += book.tick(at)
        out += book.apply(parse_notice(message_text(path.read_bytes())[0]), at)
    out += book.tick(until)
    return book, out


def test_heatwave_fixtures_are_45_notices_in_issue_order() -> None:
    times = [issued(p) for p in HEATWAVE]
    assert len(HEATWAVE) == 45 and times == sorted(times)


def test_heatwave_eea3_on_9_6_is_issued_and_started_together_then_ends_at_20() -> None:
    _book, out = replay(pt(2022, 9, 6, 20, 30))
    eea3 = [c for c in out if c.id == "caiso.notice:202202696"]
    assert [c.status for c in eea3] == [Status.ACTIVE, Status.ENDED]
    first, last = eea3
    assert (first.window.start, first.window.end) == (pt(2022, 9, 6, 17, 17),
                                                     pt(2022, 9, 6, 20))
    assert first.observed_at == pt(2022, 9, 6, 17, 26)  # issued 9 minutes after its start
    assert first.severity is Severity.CRITICAL and first.attributes.level == "3"  # type: ignore[attr-defined]
    assert last.observed_at == pt(2022, 9, 6, 20, 30) and last.revision > first.revision


def test_heatwave_9_6_overlapping_conditions_coexist() -> None:
    book, _ = replay(pt(2022, 9, 6, 17, 30))
    active = {c.id: c for c in book.open_conditions() if c.status is Status.ACTIVE}
    kinds_levels = sorted((c.kind.value, str(c.attributes.level)) for c in active.values())  # type: ignore[attr-defined]
    assert kinds_levels == [
        ("caiso.eea", "1"), ("caiso.eea", "2"), ("caiso.eea", "3"), ("caiso.eea", "WATCH"),
        ("caiso.flex_alert", "None"), ("caiso.rmo", "None"),
        ("caiso.transmission_emergency", "None")]
    assert "caiso.notice:202202643" in active  # RMO 12:00-22:00
    assert active["caiso.notice:202202692"].regions == ("Northern CA Region",)
    # Tomorrow's watch, issued 14:35, is scheduled, not active.
    assert book.get("caiso.notice:202202694").status is Status.SCHEDULED  # type: ignore[union-attr]


def test_heatwave_9_6_de_escalation_at_20_21_and_22() -> None:
    def active_at(hour: int) -> set[str]:
        book, _ = replay(pt(2022, 9, 6, hour, 0, 1))
        return {c.id for c in book.open_conditions() if c.status is Status.ACTIVE
                and c.window.start is not None and c.window.start < pt(2022, 9, 7)}
    at20, at21, at22 = active_at(20), active_at(21), active_at(22)
    assert "caiso.notice:202202696" not in at20 and "caiso.notice:202202691" in at20
    assert "caiso.notice:202202691" not in at21 and "caiso.notice:202202643" in at21
    assert at22 == set()


def test_heatwave_superseding_eea2_updates_the_window_of_the_9_7_eea2() -> None:
    _book, out = replay(pt(2022, 9, 7, 20, 25))
    eea2 = [c for c in out if c.kind is Kind.CAISO_EEA and c.attributes.level == "2"  # type: ignore[attr-defined]
            and c.window.start is not None and c.window.start.astimezone(PACIFIC).day == 7]
    ids = {c.id for c in eea2}
    assert ids == {"caiso.notice:eea2-202209071320"}  # the 13:20 notice carried no number
    windows = [(c.window.start, c.window.end, c.status) for c in eea2]
    assert windows == [
        (pt(2022, 9, 7, 16), pt(2022, 9, 7, 21), Status.SCHEDULED),  # issued 13:20
        (pt(2022, 9, 7, 16), pt(2022, 9, 7, 21), Status.ACTIVE),  # 16:00
        (pt(2022, 9, 7, 20, 11), pt(2022, 9, 7, 20, 30), Status.ACTIVE)]  # superseded 20:21
    last = eea2[-1].attributes
    assert isinstance(last, NoticeAttributes) and last.supersedes == ("202202705",)
    assert last.issued_at == pt(2022, 9, 7, 20, 21)
    _, later = replay(pt(2022, 9, 7, 20, 31))
    assert any(c.id == "caiso.notice:eea2-202209071320" and c.status is Status.ENDED
               for c in later)


def test_heatwave_day_ahead_watch_is_scheduled_then_active() -> None:
    _, out = replay(pt(2022, 9, 7, 16, 1))
    watch = [c for c in out if c.id == "caiso.notice:202202694"]
    assert [c.status for c in watch] == [Status.SCHEDULED, Status.ACTIVE]
    assert watch[0].observed_at == pt(2022, 9, 6, 14, 35)


def test_replaying_the_heatwave_twice_gives_identical_revisions() -> None:
    _, a = replay(pt(2022, 9, 10))
    _, b = replay(pt(2022, 9, 10))
    assert [(c.id, c.revision, c.content_hash()) for c in a] == [
        (c.id, c.revision, c.content_hash()) for c in b]
    assert all(c.status in (Status.ENDED, Status.CANCELLED) for c in
               {c.id: c for c in a}.values())
