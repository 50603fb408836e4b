"""A superseding CAISO notice, from the real notice emails through the real `NoticeBook` into
decide: subscribers hear the new window as an `updated`, reminders continue, and the all-clear
comes when the superseding notice's window ends. A condition never supersedes itself.

The 2022-09-07 EEA 2 for 16:00-21:00 (issued 13:20, #202202705) was superseded at 20:21 by an
EEA 2 for 20:11-20:30. In the demo scenario the 13:20 email carries the number in its Subject,
so the book files the superseding notice under `caiso.notice:202202705` with `supersedes`
naming that same notice; in the test fixtures the 13:20 text has no number and the book finds
it by type and issue time (`caiso.notice:eea2-202209071320`).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from consumers.decide import state
from consumers.decide.rules import superseded_ids
from monitor.attributes import NoticeAttributes
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.notifications import Notification
from monitor.store import Store
from producers.caiso_notice_text import parse_notice
from producers.caiso_notices import NoticeBook, message_text
from tests.decide.conftest import T0
from tests.decide.timeline import decide_replay

PT = ZoneInfo("America/Los_Angeles")
ROOT = Path(__file__).parent.parent.parent
SCENARIO_NOTICES = ROOT / "scenarios" / "2022-09-heatwave" / "notices"
FIXTURE_NOTICES = ROOT / "tests" / "fixtures" / "caiso" / "notices" / "heatwave_2022"
SMS = {"type": "sms", "phone": "+14155550100"}
# Through the night after the supersession (9/7 20:21), and every 9/6 all-clear before it.
UNTIL = datetime(2022, 9, 8, 0, 0, tzinfo=PT)


def pt(text: str) -> datetime:
    return datetime.strptime(f"2022/{text}", "%Y/%m/%d %H:%M").replace(tzinfo=PT)


def book_revisions(folder: Path, until: datetime) -> list[Condition]:
    """What the producer publishes: each email applied at its Date (its issue time), and the
    book's own clock revisions (window starts and ends) at the instants it asks for."""
    messages = []
    for path in folder.glob("*.eml"):
        raw = path.read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        messages.append((email.utils.parsedate_to_datetime(str(msg["Date"])), path.name, raw))
    book = NoticeBook()
    out: list[Condition] = []
    now = T0

    def tick_until(t: datetime) -> None:
        nonlocal now
        while (nxt := book.next_change(now)) is not None and nxt <= t:
            now = nxt
            out.extend(book.tick(now))
        now = max(now, t)

    for at, _name, raw in sorted(messages):
        if at > until:
            break
        tick_until(at)
        text, _ = message_text(raw)
        out.extend(book.apply(parse_notice(text), at))
    tick_until(until)
    return out


async def decide_all(store: Store, revisions: list[Condition], subs: dict[str, dict[str, Any]]
                     ) -> dict[str, list[Notification]]:
    return (await decide_replay(store, revisions, UNTIL, subs)).published


def items(notifications: list[Notification], condition_id: str) -> list[tuple[str, str]]:
    """(Pacific 'M/D HH:MM' decided, transition) of every item about one condition."""
    return [(f"{n.decided_at.astimezone(PT):%m/%d %H:%M}", i.transition.value)
            for n in sorted(notifications, key=lambda n: (n.decided_at, n.key))
            for i in n.items if i.condition.id == condition_id]


SUBSCRIBERS = {
    "eea2-up": {"match": {"kinds": ["caiso.eea"], "min_severity": "emergency"},
                "transitions": ["issued", "updated", "started", "ended", "cancelled"],
                "channel": SMS},
    "reminded": {"match": {"kinds": ["caiso.eea"], "min_severity": "emergency"},
                 "transitions": ["issued", "updated", "ended", "reminder"],
                 "repeat_interval": "PT5M", "channel": SMS},
}


async def test_superseded_eea2_with_known_number_still_gets_its_all_clear(store: Store) -> None:
    revisions = book_revisions(SCENARIO_NOTICES, UNTIL)
    eea2 = "caiso.notice:202202705"

    # The producer's contract: the superseding notice is a revision of the condition it
    # supersedes, carrying the new window; `supersedes` names that same notice.
    superseding = next(c for c in revisions if c.observed_at == pt("09/07 20:21"))
    assert superseding.id == eea2 and superseding.status is Status.ACTIVE
    assert (superseding.window.start, superseding.window.end) == (pt("09/07 20:11"),
                                                                 pt("09/07 20:30"))
    assert isinstance(superseding.attributes, NoticeAttributes)
    assert superseding.attributes.supersedes == ("202202705",)
    # ...which decide must not read as the condition superseding itself.
    assert superseded_ids(superseding) == []

    published = await decide_all(store, revisions, {"eea2-up": SUBSCRIBERS["eea2-up"]})

    # One EEA 2, one issue, the new window as an update, and the all-clear at its new end.
    assert items(published["eea2-up"], eea2) == [
        ("09/07 13:20", "issued"), ("09/07 16:00", "started"),
        ("09/07 20:21", "updated"), ("09/07 20:30", "ended")]
    updated = next(i for n in published["eea2-up"] for i in n.items
                   if i.condition.id == eea2 and i.transition.value == "updated")
    previous_end = datetime.fromisoformat(updated.facts["previous"]["window_end"])
    assert previous_end == pt("09/07 21:00")
    assert updated.condition.window.end == pt("09/07 20:30")

    async with store.connect() as conn:
        view = await state.get_view(conn, eea2)
    assert view is not None and view.status == "ended"

    # 9/6: the EEA 3 and the numberless EEA 2 each get their all-clear.
    assert items(published["eea2-up"], "caiso.notice:202202696") == [
        ("09/06 17:26", "issued"), ("09/06 20:00", "ended")]
    assert items(published["eea2-up"], "caiso.notice:eea2-202209061355") == [
        ("09/06 13:55", "issued"), ("09/06 16:00", "started"), ("09/06 21:00", "ended")]


async def test_reminders_go_on_after_the_supersession(store: Store) -> None:
    # Only 9/7 from noon (the 13:20 notice onwards): reminders every 5 minutes are many ticks.
    revisions = [c for c in book_revisions(SCENARIO_NOTICES, UNTIL)
                 if c.observed_at >= pt("09/07 12:00")]
    published = await decide_all(store, revisions, {"reminded": SUBSCRIBERS["reminded"]})
    reminded = items(published["reminded"], "caiso.notice:202202705")
    # Counted from the supersession (20:21 + 5 min), until the all-clear at the new end.
    assert reminded[-3:] == [("09/07 20:21", "updated"), ("09/07 20:26", "reminder"),
                             ("09/07 20:30", "ended")]


async def test_superseded_numberless_eea2_found_by_issue_time_gets_its_all_clear(
        store: Store) -> None:
    revisions = book_revisions(FIXTURE_NOTICES, UNTIL)
    eea2 = "caiso.notice:eea2-202209071320"
    published = await decide_all(store, revisions, {"eea2-up": SUBSCRIBERS["eea2-up"]})
    assert items(published["eea2-up"], eea2) == [
        ("09/07 13:20", "issued"), ("09/07 16:00", "started"),
        ("09/07 20:21", "updated"), ("09/07 20:30", "ended")]
    assert items(published["eea2-up"], "caiso.notice:202202696") == [
        ("09/06 17:26", "issued"), ("09/06 20:00", "ended")]


def _eea2(cid: str, start: str, end: str, observed: str, supersedes: tuple[str, ...] = ()
          ) -> Condition:
    return Condition(
        id=cid, kind=Kind.CAISO_EEA, severity=Severity.EMERGENCY, status=Status.ACTIVE,
        window=Window(start=pt(start), end=pt(end)), regions=("CAISO Grid",),
        attributes=NoticeAttributes(level="2", supersedes=supersedes, channel="replay"),
        revision=revision_at(pt(observed)), observed_at=pt(observed))


def test_superseded_ids_never_names_the_condition_itself() -> None:
    own = _eea2("caiso.notice:202202705", "09/07 20:11", "09/07 20:30", "09/07 20:21",
                ("202202705",))
    assert superseded_ids(own) == []
    other = _eea2("caiso.notice:eea2-202209072021", "09/07 20:11", "09/07 20:30",
                  "09/07 20:21", ("202202705", "caiso.notice:eea2-202209072021"))
    assert superseded_ids(other) == ["caiso.notice:202202705"]


async def test_superseding_another_condition_closes_it_silently(store: Store) -> None:
    """A producer that files the superseding notice under an id of its own: the old view is
    closed without an all-clear, and the new condition is announced and later ends."""
    old = _eea2("caiso.notice:202202705", "09/07 16:00", "09/07 21:00", "09/07 16:00")
    new = _eea2("caiso.notice:eea2-202209072021", "09/07 20:11", "09/07 20:30", "09/07 20:21",
                ("202202705",))
    published = await decide_all(store, [old, new], {"eea2-up": SUBSCRIBERS["eea2-up"]})
    assert items(published["eea2-up"], old.id) == [("09/07 16:00", "issued")]
    assert items(published["eea2-up"], new.id) == [("09/07 20:21", "issued"),
                                                   ("09/07 20:30", "ended")]
    async with store.connect() as conn:
        closed = await state.get_view(conn, old.id)
    assert closed is not None and closed.status == "superseded"
    assert closed.changed_at == pt("09/07 20:21")

