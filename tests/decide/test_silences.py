"""Silences through the real decide: what a silence matches is recorded as suppressed with the
silence's id as the reason; everything else, and the all-clear of what the subscriber already
heard, goes out; a silence not yet started or already over holds nothing back."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumers.decide.decider import DecideConfig, Decider
from monitor import ledger
from monitor.attributes import DrEventAttributes, NoticeAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.metrics import NOTIFICATIONS_SUPPRESSED
from monitor.notifications import Transition
from monitor.silences import SilenceMatch, SilenceSpec
from monitor.store import Store
from monitor.store import silences as silence_store
from tests.decide.conftest import T0, add_subscription, add_tenant
from tests.decide.timeline import decide_replay

PT = ZoneInfo("America/Los_Angeles")
SMS = {"type": "sms", "phone": "+14155550100"}
ALL = ["issued", "updated", "started", "ended", "cancelled"]


def pt(text: str) -> datetime:
    return datetime.strptime(f"2022/{text}", "%Y/%m/%d %H:%M").replace(tzinfo=PT)


def flex(day: str, observed: str) -> Condition:
    return Condition(
        id=f"caiso.flex:2022-{day.replace('/', '-')}", kind=Kind.CAISO_FLEX_ALERT,
        severity=Severity.WATCH, status=Status.SCHEDULED,
        window=Window(start=pt(f"{day} 16:00"), end=pt(f"{day} 21:00")),
        regions=("CAISO Grid",), attributes=NoticeAttributes(channel="replay"),
        revision=revision_at(pt(observed)), observed_at=pt(observed))


def eea(level: str, number: str, start: str, end: str, observed: str) -> Condition:
    return Condition(
        id=f"caiso.notice:{number}", kind=Kind.CAISO_EEA, severity=Severity.EMERGENCY,
        status=Status.SCHEDULED, window=Window(start=pt(start), end=pt(end)),
        regions=("CAISO Grid",),
        attributes=NoticeAttributes(notice_no=number, level=level, channel="replay"),
        revision=revision_at(pt(observed)), observed_at=pt(observed))


def bip(observed: str) -> Condition:
    return Condition(
        id="sce.dr:bip-20220908", kind=Kind.SCE_DR_EVENT, severity=Severity.WARNING,
        status=Status.SCHEDULED,
        window=Window(start=pt("09/08 15:00"), end=pt("09/08 19:00")), regions=("SCE",),
        attributes=DrEventAttributes(program="BIP", product="BIP-30"),
        revision=revision_at(pt(observed)), observed_at=pt(observed))


async def run(store: Store, revisions: list[Condition], until: datetime,
              silences: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[str]]:
    """One subscriber hearing every transition; returns what was published, what the ledger
    holds as suppressed, and the silences' ids."""
    ids: list[str] = []

    async def silence(tenant: str) -> None:
        async with store.begin() as conn:
            for spec in silences:
                s = await silence_store.create(conn, tenant, SilenceSpec.model_validate(
                    {"created_by": "ops lead", "comment": "planned", **spec}), T0)
                ids.append(s.id)

    decided = await decide_replay(store, revisions, until,
                                  {"ops": {"channel": SMS, "transitions": ALL}}, silence)
    async with store.connect() as conn:
        suppressed = await ledger.list_entries(conn, subscription_id=decided.ids["ops"],
                                               states=["suppressed"], limit=500)
    published = [i for n in decided.published["ops"] for i in n.items]
    return published, suppressed, ids


def said(items: list[Any]) -> set[tuple[str, str]]:
    return {(i.condition.id, i.transition.value) for i in items}


def held(entries: list[Any]) -> dict[tuple[str, str], str]:
    out = {}
    for e in entries:
        for i in e.notification().items:
            out[(i.condition.id, i.transition.value)] = e.last_error
    return out


async def test_a_silence_holds_back_what_it_matches_and_names_itself(store: Store) -> None:
    # Flex Alerts silenced for 9/8 only: the 9/7 one is heard, the 9/8 one is not; the EEA
    # of 9/8 is not a Flex Alert and goes out.
    before = NOTIFICATIONS_SUPPRESSED.labels(reason="silenced")._value.get()
    revisions = [flex("09/07", "09/07 09:00"), flex("09/08", "09/08 09:00"),
                 eea("2", "202202710", "09/08 17:00", "09/08 20:00", "09/08 14:00")]
    published, suppressed, [sid] = await run(store, revisions, pt("09/08 23:00"), [
        {"match": {"kinds": ["caiso.flex_alert"]}, "starts_at": pt("09/08 00:00").isoformat(),
         "ends_at": pt("09/09 00:00").isoformat()}])
    heard, kept = said(published), held(suppressed)
    assert ("caiso.flex:2022-09-07", "issued") in heard
    assert ("caiso.flex:2022-09-07", "ended") in heard
    assert ("caiso.notice:202202710", "issued") in heard
    for t in ("issued", "started", "ended"):
        assert ("caiso.flex:2022-09-08", t) not in heard
        assert kept[("caiso.flex:2022-09-08", t)] == f"silenced:{sid}"
    assert not any(cid.startswith("caiso.notice") for cid, _ in kept)
    after = NOTIFICATIONS_SUPPRESSED.labels(reason="silenced")._value.get()
    assert after - before == 3


@pytest.mark.parametrize("include_all_clear", [False, True])
async def test_an_all_clear_of_what_was_heard_passes_unless_the_silence_says(
        store: Store, include_all_clear: bool) -> None:
    # The 9/7 Flex Alert is issued at 09:00 and heard; a silence from 18:00 covers its end.
    published, suppressed, [sid] = await run(store, [flex("09/07", "09/07 09:00")],
                                             pt("09/07 23:00"), [
        {"match": {"kinds": ["caiso.flex_alert"]}, "starts_at": pt("09/07 15:00").isoformat(),
         "ends_at": pt("09/08 00:00").isoformat(), "include_all_clear": include_all_clear}])
    heard, kept = said(published), held(suppressed)
    assert ("caiso.flex:2022-09-07", "issued") in heard
    assert kept[("caiso.flex:2022-09-07", "started")] == f"silenced:{sid}"
    ended = ("caiso.flex:2022-09-07", "ended")
    if include_all_clear:
        assert ended not in heard and kept[ended] == f"silenced:{sid}"
    else:
        assert ended in heard and ended not in kept


async def test_an_all_clear_of_what_was_never_heard_stays_silent(store: Store) -> None:
    published, suppressed, [sid] = await run(store, [flex("09/07", "09/07 09:00")],
                                             pt("09/07 23:00"), [
        {"match": {"kinds": ["caiso.flex_alert"]}, "starts_at": pt("09/07 08:00").isoformat(),
         "ends_at": pt("09/08 00:00").isoformat()}])
    assert not any(cid == "caiso.flex:2022-09-07" for cid, _ in said(published))
    assert held(suppressed)[("caiso.flex:2022-09-07", "ended")] == f"silenced:{sid}"


@pytest.mark.parametrize(("match", "silenced"), [
    ({"programs": ["BIP"]}, {"sce.dr:bip-20220908"}),
    ({"programs": ["CPP"]}, set()),
    ({"regions": ["SCE"]}, {"sce.dr:bip-20220908"}),
    ({"regions": ["SDG&E"]}, set()),
    ({"regions": ["CAISO Grid"]}, {"caiso.notice:202202710"}),
    ({"condition_ids": ["caiso.notice:202202710"]}, {"caiso.notice:202202710"}),
    ({"min_severity": "warning", "max_severity": "warning"}, {"sce.dr:bip-20220908"}),
    ({"min_severity": "emergency"}, {"caiso.notice:202202710"}),
])
async def test_each_matcher(store: Store, match: dict[str, Any], silenced: set[str]) -> None:
    revisions = [bip("09/08 08:00"),
                 eea("2", "202202710", "09/08 17:00", "09/08 20:00", "09/08 14:00")]
    published, suppressed, _ = await run(store, revisions, pt("09/08 23:00"), [
        {"match": match, "ends_at": pt("09/09 00:00").isoformat()}])
    assert {cid for cid, t in held(suppressed) if t == "issued"} == silenced
    assert {cid for cid, t in said(published) if t == "issued"} == (
        {"sce.dr:bip-20220908", "caiso.notice:202202710"} - silenced)


async def test_pending_and_expired_silences_hold_nothing(store: Store) -> None:
    published, suppressed, _ = await run(store, [flex("09/07", "09/07 09:00")],
                                         pt("09/07 23:00"), [
        {"match": {"kinds": ["caiso.flex_alert"]}, "starts_at": pt("09/08 00:00").isoformat(),
         "ends_at": pt("09/09 00:00").isoformat()},
        {"match": {"kinds": ["caiso.flex_alert"]}, "starts_at": pt("09/06 00:00").isoformat(),
         "ends_at": pt("09/07 00:00").isoformat()}])
    assert not suppressed
    assert said(published) >= {("caiso.flex:2022-09-07", t.value)
                               for t in (Transition.ISSUED, Transition.STARTED,
                                         Transition.ENDED)}


def test_a_silence_of_everything_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one matcher"):
        SilenceMatch()
    with pytest.raises(ValueError, match="below min_severity"):
        SilenceMatch(min_severity=Severity.CRITICAL, max_severity=Severity.WATCH)


async def test_a_silence_made_elsewhere_holds_once_decide_refreshes(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Decide keeps silences beside its subscription index. One written by another process
    # (the API beside a decide of its own) is seen when the refresh notices the table
    # changed, within `refresh_s`; one that ends is let go by the clock, with no reload.
    clock = ManualClock(pt("09/08 08:00"))
    tenant = await add_tenant(store, "CPA")
    sub = await add_subscription(store, tenant, {"name": "ops", "channel": SMS,
                                                 "transitions": ALL})
    decider = Decider(store, MemoryBus(), clock, DecideConfig(refresh_s=5.0))
    await decider.refresh_index(force=True)
    async with store.begin() as conn:
        made = await silence_store.create(conn, tenant, SilenceSpec.model_validate({
            "match": {"kinds": ["caiso.flex_alert"]}, "created_by": "ops lead",
            "comment": "planned", "starts_at": pt("09/08 08:00").isoformat(),
            "ends_at": pt("09/08 12:00").isoformat()}), clock.now())
    # As if another process wrote it: this process's change counter never moved.
    monkeypatch.setattr(silence_store.WATCH, "local_changes", silence_store.WATCH.local_changes - 1)

    async def reason(day: str, observed: str) -> str | None:
        await decider.handle(flex(day, observed))
        async with store.connect() as conn:
            entries = await ledger.list_entries(conn, subscription_id=sub, limit=50)
        for e in entries:
            if any(i.condition.id == flex(day, observed).id for i in e.notification().items):
                return e.last_error if e.state == "suppressed" else None
        raise AssertionError(f"nothing decided for {day}")

    assert await reason("09/09", "09/08 08:00") is None  # not noticed yet
    clock.set(pt("09/08 08:01"))
    assert await reason("09/10", "09/08 08:01") == f"silenced:{made.id}"
    clock.set(pt("09/08 12:00"))
    assert await reason("09/11", "09/08 12:00") is None  # over, without a reload
