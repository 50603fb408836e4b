"""The Aug 31 - Sep 9 2022 heat wave through decide: who hears what, and when.

Every CAISO notice of the heat wave (facts from CAISO's grid emergencies history) is handed to
decide at the time it was issued, and the clock runs through the whole ten days; the
notifications each subscriber gets are asserted item by item, in Pacific time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from monitor import ledger
from monitor.notifications import Notification
from monitor.store import Store
from tests.decide.timeline import decide_replay, heatwave

PT = ZoneInfo("America/Los_Angeles")
END = datetime(2022, 9, 10, 6, 0, tzinfo=PT)
SMS = {"type": "sms", "phone": "+14155550100"}


def items_of(notifications: list[Notification]) -> list[tuple[str, str, str]]:
    """(decided at, Pacific 'M/D HH:MM', transition, condition id) for every item."""
    out = []
    for n in sorted(notifications, key=lambda n: (n.decided_at, n.key)):
        for item in n.items:
            out.append((f"{n.decided_at.astimezone(PT):%m/%d %H:%M}", item.transition.value,
                        item.condition.id))
    return out


async def run_heatwave(store: Store, subs: dict[str, dict]) -> tuple[
        dict[str, list[Notification]], dict[str, list[ledger.LedgerEntry]]]:
    decided = await decide_replay(store, heatwave(), END, subs)
    tenant, ids = decided.tenant, decided.ids
    async with store.connect() as conn:
        entries = await ledger.list_entries(conn, tenant_id=tenant, limit=10_000)
    ledgers = {name: [e for e in entries if e.subscription_id == ids[name]] for name in subs}
    return decided.published, ledgers


SUBSCRIBERS = {
    # Hears only EEA 3: its issue at 17:26 on 9/6 and its all-clear at 20:00.
    "eea3-only": {"match": {"kinds": ["caiso.eea"], "min_severity": "critical"},
                  "channel": SMS},
    # Hears EEA 2 and above.
    "eea2-up": {"match": {"kinds": ["caiso.eea"], "min_severity": "emergency"},
                "channel": SMS},
    # Flex Alerts only, issue and all-clear.
    "flex": {"match": {"kinds": ["caiso.flex_alert"]}, "transitions": ["issued", "ended"],
             "channel": {"type": "email", "address": "ops@cleanpower.example"}},
    # Everything at warning and above in SCE territory, with quiet hours overnight.
    "night": {"match": {"min_severity": "advisory", "regions": ["SCLD"]},
              "quiet_hours": {"start": "22:00", "end": "06:00"}, "channel": SMS},
    # Transmission emergencies in the north only.
    "north-te": {"match": {"kinds": ["caiso.transmission_emergency"],
                           "regions": ["Northern CA Region"]}, "channel": SMS},
}


async def test_heatwave_who_hears_what(store: Store) -> None:
    published, ledgers = await run_heatwave(store, SUBSCRIBERS)

    # The EEA 3 at 17:26 on 9/6 and its all-clear at 20:00: exactly two messages.
    assert items_of(published["eea3-only"]) == [
        ("09/06 17:26", "issued", "caiso.notice:202202696"),
        ("09/06 20:00", "ended", "caiso.notice:202202696"),
    ]
    assert [n.severity.value for n in published["eea3-only"]] == ["critical", "critical"]
    assert "EEA 3" in published["eea3-only"][0].summary

    # EEA 2 and above: every EEA 2 issue, start and end, the EEA 3, and the 9/7 20:21 EEA 2
    # that supersedes #202202705: an update of #202202705 to 20:11-20:30, then its all-clear.
    eea2 = items_of(published["eea2-up"])
    assert eea2 == [
        ("09/05 17:51", "issued", "caiso.notice:eea2-202209051751"),
        ("09/05 18:30", "started", "caiso.notice:eea2-202209051751"),
        ("09/05 20:00", "ended", "caiso.notice:eea2-202209051751"),
        ("09/06 13:55", "issued", "caiso.notice:eea2-202209061355"),
        ("09/06 16:00", "started", "caiso.notice:eea2-202209061355"),
        ("09/06 17:26", "issued", "caiso.notice:202202696"),
        ("09/06 20:00", "ended", "caiso.notice:202202696"),
        ("09/06 21:00", "ended", "caiso.notice:eea2-202209061355"),
        ("09/07 13:20", "issued", "caiso.notice:202202705"),
        ("09/07 16:00", "started", "caiso.notice:202202705"),
        ("09/07 20:21", "updated", "caiso.notice:202202705"),
        ("09/07 20:30", "ended", "caiso.notice:202202705"),
        ("09/08 13:41", "issued", "caiso.notice:202202717"),
        ("09/08 16:00", "started", "caiso.notice:202202717"),
        ("09/08 21:00", "ended", "caiso.notice:202202717"),
    ]
    assert [i for i in eea2 if i[2] == "caiso.notice:202202705" and i[1] == "ended"] == [
        ("09/07 20:30", "ended", "caiso.notice:202202705")]  # not 21:00, the old end

    # Flex Alerts: one issue and one all-clear per day, 8/31 to 9/9 (no 9/8 gap in CAISO's
    # record: 9/8 ran 15:00-22:00).
    flex = items_of(published["flex"])
    assert [i for i in flex if i[1] == "issued"] == [
        (f"{d} {h}", "issued", f"caiso.flex:2022-{d.replace('/', '-')}")
        for d, h in (("08/31", "16:00"), ("09/01", "16:00"), ("09/02", "16:00"),
                     ("09/03", "16:00"), ("09/04", "16:00"), ("09/05", "16:00"),
                     ("09/06", "16:00"), ("09/07", "16:00"), ("09/08", "15:00"),
                     ("09/09", "16:00"))]
    assert len([i for i in flex if i[1] == "ended"]) == 10
    assert all(i[2].startswith("caiso.flex:") for i in flex)

    # Quiet hours 22:00-06:00: nothing below emergency is sent overnight; what would have
    # been (the 22:00 all-clears of RMOs, Flex Alerts, EEA Watches) is in the ledger as
    # suppressed with its reason.
    night = published["night"]
    for n in night:
        local = n.decided_at.astimezone(PT).time()
        assert not (local.hour >= 22 or local.hour < 6), (n.summary, n.decided_at)
    suppressed = [e for e in ledgers["night"] if e.state == "suppressed"]
    assert suppressed and {e.last_error for e in suppressed} == {"quiet_hours"}
    quiet_items = sorted((f"{e.created_at.astimezone(PT):%m/%d %H:%M}",
                          e.notification().items[0].condition.id) for e in suppressed)
    assert ("08/31 22:00", "caiso.notice:202202637") in quiet_items  # RMO all-clear
    assert ("09/05 22:00", "caiso.flex:2022-09-05") in quiet_items
    assert ("09/08 22:00", "caiso.flex:2022-09-08") in quiet_items
    # ...while the SCE-area subscriber hears CAISO-wide notices in the day, but no Northern
    # CA transmission emergency.
    assert any(i[2] == "caiso.notice:202202696" for i in items_of(night))
    assert not any(i[2] in {"caiso.notice:202202679", "caiso.notice:202202692"}
                   for i in items_of(night))

    # Grouping: the four all-clears of 9/6 21:00 reach the night subscriber as one message.
    at_21 = [n for n in night if f"{n.decided_at.astimezone(PT):%m/%d %H:%M}" == "09/06 21:00"]
    assert len(at_21) == 1 and len(at_21[0].items) == 4
    assert at_21[0].summary.startswith("4 updates: ")

    # The Northern CA subscriber hears each Palermo-area transmission emergency.
    assert sorted({i[2] for i in items_of(published["north-te"])}) == [
        "caiso.notice:202202679", "caiso.notice:202202692", "caiso.notice:202202706",
        "caiso.notice:202202718"]

    # What was published is exactly what the ledger admitted as pending, key for key.
    for name in SUBSCRIBERS:
        assert {n.key for n in published[name]} == {
            e.key for e in ledgers[name] if e.state == "pending"}
