"""Escalation policies through the real decide, on SQLite and PostgreSQL, on a ManualClock:
the on-call hears an EEA first; nobody acknowledging for 10 minutes pages the backup, 10 more
the director and the ops mailbox; an acknowledgement stops the ladder and the reminders, even
one that commits between a tick's read and its advance; a decide killed after a step's commit
pages nobody twice; quiet hours, the all-clear and a policy's rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from consumers.decide.decider import DecideConfig, Decider
from consumers.decide.stages import escalate
from monitor import ledger
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.escalation import PolicySpec, RunState
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.ledger import acks
from monitor.metrics import ESCALATION_STEPS, ESCALATIONS_ENDED, ESCALATIONS_STARTED
from monitor.notifications import Notification, Transition, notification_from_event
from monitor.store import Store, escalations
from monitor.store import escalation_policies as policy_store
from monitor.store import subscriptions as sub_store
from monitor.topics import NOTIFICATIONS
from tests.decide.conftest import T0, add_subscription, add_tenant

PT = ZoneInfo("America/Los_Angeles")
ALL = ["issued", "updated", "started", "ended", "cancelled"]
QUIET = {"start": "22:00", "end": "06:00", "bypass_severity": "emergency"}
SUBS: dict[str, dict[str, Any]] = {
    "oncall": {"channel": {"type": "sms", "phone": "+14155550100"},
               "transitions": [*ALL, "reminder"], "repeat_interval": "PT30M"},
    "backup": {"channel": {"type": "webhook", "url": "https://cca.example/backup"},
               "transitions": ALL, "quiet_hours": QUIET},
    "director": {"channel": {"type": "email", "address": "director@cca.example"},
                 "transitions": ALL},
    "ops": {"channel": {"type": "email", "address": "ops@cca.example"}, "transitions": ALL},
}
LADDER = {"name": "EEA on-call", "min_severity": "emergency", "steps": [
    {"subscriptions": ["oncall"]},
    {"after": "PT10M", "subscriptions": ["backup"]},
    {"after": "PT10M", "subscriptions": ["director", "ops"]}]}


def pt(hhmm: str, day: str = "09/08") -> datetime:
    return datetime.strptime(f"2022/{day} {hhmm}", "%Y/%m/%d %H:%M").replace(tzinfo=PT)


def notice(number: str, severity: Severity, start: str, end: str, observed: str,
           level: str = "2") -> Condition:
    return Condition(
        id=f"caiso.notice:{number}", kind=Kind.CAISO_EEA, severity=severity,
        status=Status.ACTIVE, window=Window(start=pt(start), end=pt(end)),
        regions=("CAISO Grid",),
        attributes=NoticeAttributes(notice_no=number, level=level, channel="replay"),
        revision=revision_at(pt(observed)), observed_at=pt(observed))


EEA2 = notice("202202710", Severity.EMERGENCY, "14:00", "20:00", "14:00")


@dataclass
class World:
    store: Store
    clock: ManualClock
    bus: MemoryBus
    decider: Decider
    tenant: str
    ids: dict[str, str]
    policy_ids: list[str] = field(default_factory=list)
    heard: dict[str, list[Notification]] = field(default_factory=dict)

    def name(self, sub_id: str) -> str:
        return {v: k for k, v in self.ids.items()}[sub_id]

    async def at(self, when: datetime, *revisions: Condition) -> dict[str, list[Notification]]:
        """Move the clock to `when`, hand decide the revisions, tick; what was published."""
        self.clock.set(when)
        for c in revisions:
            await self.decider.handle(c)
        await self.decider.tick()
        return await self.drain()

    async def drain(self) -> dict[str, list[Notification]]:
        out: dict[str, list[Notification]] = {}
        reader = self.reader
        while (msg := await reader.get(timeout=0.05)) is not None:
            n = notification_from_event(msg.event())
            out.setdefault(self.name(n.subscription_id), []).append(n)
            self.heard.setdefault(self.name(n.subscription_id), []).append(n)
            await reader.ack(msg)
        return out

    async def runs(self) -> list[escalations.Run]:
        async with self.store.connect() as conn:
            return await escalations.list_runs(conn, self.tenant)

    async def ack(self, n: Notification, by: str = "Dana") -> None:
        async with self.store.begin() as conn:
            await acks.acknowledge(conn, n.key, by, acks.Via.SMS, self.clock.now())

    def restart(self) -> None:
        self.decider = Decider(self.store, self.bus, self.clock)

    reader: Any = None


def ladder(names: dict[str, str], spec: dict[str, Any]) -> PolicySpec:
    return PolicySpec.model_validate({**spec, "steps": [
        {**step, "subscriptions": [names[s] for s in step["subscriptions"]]}
        for step in spec["steps"]]})


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    tenant = await add_tenant(store, "Clean Power Alliance")
    ids = {name: await add_subscription(store, tenant, {"name": name, **spec})
           for name, spec in SUBS.items()}
    bus = MemoryBus()
    await bus.start()
    clock = ManualClock(T0)
    w = World(store, clock, bus, Decider(store, bus, clock), tenant, ids)
    w.reader = bus.subscribe([NOTIFICATIONS], "test-reader")
    await w.reader.start()
    async with store.begin() as conn:
        p = await policy_store.create(conn, tenant, ladder(ids, LADDER), T0)
    w.policy_ids.append(p.id)
    await w.decider.refresh_index(force=True)
    try:
        yield w
    finally:
        await w.reader.close()
        await bus.close()


def steps_of(ns: list[Notification]) -> list[int | None]:
    return [None if n.escalation is None else n.escalation.step for n in ns]


async def test_nobody_acknowledging_pages_each_step_in_turn(world: World) -> None:
    started = ESCALATIONS_STARTED._value.get()
    fired = ESCALATION_STEPS.labels(step="1")._value.get()
    first = await world.at(pt("14:00"), EEA2)
    # The on-call hears it; the later steps are held back from the emergency band.
    assert set(first) == {"oncall"} and steps_of(first["oncall"]) == [None]
    assert ESCALATIONS_STARTED._value.get() - started == 1
    assert await world.decider.next_wakeup(world.clock.now()) == pt("14:10")
    assert await world.at(pt("14:09")) == {}
    second = await world.at(pt("14:10"))
    assert set(second) == {"backup"}
    (page,) = second["backup"]
    [run] = await world.runs()
    assert page.escalation is not None and page.escalation.run_id == run.id
    assert page.escalation.policy_id == world.policy_ids[0] and page.escalation.step == 1
    assert page.items[0].condition.id == EEA2.id
    assert page.items[0].transition is Transition.ISSUED
    assert ESCALATION_STEPS.labels(step="1")._value.get() - fired == 1
    assert await world.at(pt("14:19")) == {}
    third = await world.at(pt("14:20"))
    assert set(third) == {"director", "ops"} and steps_of(third["ops"]) == [2]
    [run] = await world.runs()
    assert run.state is RunState.EXHAUSTED and run.step == 2 and run.next_at is None
    paged = {world.name(p.subscription_id): p for p in run.pages}
    assert paged["backup"].key == page.key and paged["backup"].paged_at == pt("14:10")
    assert paged["oncall"].key == first["oncall"][0].key
    # Nothing more to page: ticks later page nobody.
    assert (await world.at(pt("15:00"))).keys() <= {"oncall"}


async def test_a_held_subscription_hears_below_the_band_as_usual(world: World) -> None:
    eea1 = notice("202202700", Severity.WARNING, "12:00", "20:00", "12:00", level="1")
    heard = await world.at(pt("12:00"), eea1)
    assert set(heard) == {"oncall", "backup", "director", "ops"}
    assert await world.runs() == []


async def test_an_acknowledgement_stops_the_ladder_and_the_reminders(world: World) -> None:
    ended = ESCALATIONS_ENDED.labels(outcome="acknowledged")._value.get()
    first = await world.at(pt("14:00"), EEA2)
    world.clock.set(pt("14:05"))
    await world.ack(first["oncall"][0])
    [run] = await world.runs()
    assert run.state is RunState.ACKNOWLEDGED and run.acknowledged_key == first["oncall"][0].key
    assert ESCALATIONS_ENDED.labels(outcome="acknowledged")._value.get() - ended == 1
    assert await world.decider.next_wakeup(world.clock.now()) != pt("14:10")
    for when in ("14:10", "14:20", "14:30", "15:00"):
        # No backup, no director, and no "still in effect" reminder at 14:30 or 15:00.
        assert await world.at(pt(when)) == {}, when


async def test_without_an_acknowledgement_the_reminders_go_on(world: World) -> None:
    await world.at(pt("14:00"), EEA2)
    reminder = await world.at(pt("14:30"))
    assert [n.items[0].transition for n in reminder["oncall"]] == [Transition.REMINDER]


async def test_an_acknowledged_notification_without_a_policy_stops_its_reminders(
        world: World) -> None:
    other = await add_subscription(world.store, world.tenant, {
        "name": "desk", "channel": {"type": "sms", "phone": "+14155550111"},
        "transitions": [*ALL, "reminder"], "repeat_interval": "PT30M"})
    world.ids["desk"] = other
    await world.decider.refresh_index(force=True)
    first = await world.at(pt("14:00"), EEA2)
    world.clock.set(pt("14:01"))
    await world.ack(first["desk"][0], by="the desk")
    # The desk took it: its reminders stop; the on-call's run is untouched and climbs.
    assert set(await world.at(pt("14:10"))) == {"backup"}
    later = await world.at(pt("14:30"))
    assert "desk" not in later
    assert [n.items[0].transition for n in later["oncall"]] == [Transition.REMINDER]


async def test_an_acknowledgement_racing_the_tick_pages_at_most_once(
        world: World, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await world.at(pt("14:00"), EEA2)
    other = Store(store_url)  # another process: its own connections and transactions
    read = escalations.due
    raced: list[int] = []

    async def due_then_ack(conn: Any, now: datetime) -> list[escalations.DueRun]:
        runs = await read(conn, now)
        if runs and not raced:
            # Committed after the tick read the due run and before it advances it.
            async with other.begin() as c2:
                await acks.acknowledge(c2, first["oncall"][0].key, "Dana", acks.Via.SMS, now)
            raced.append(len(runs))
        return runs

    monkeypatch.setattr(escalations, "due", due_then_ack)
    try:
        assert await world.at(pt("14:10")) == {}
    finally:
        await other.close()
    assert raced == [1]
    [run] = await world.runs()
    assert run.state is RunState.ACKNOWLEDGED and run.step == 0
    assert await world.at(pt("14:20")) == {}
    async with world.store.connect() as conn:
        backup = await ledger.list_entries(conn, subscription_id=world.ids["backup"])
    assert backup == []


async def test_a_decide_killed_after_a_steps_commit_pages_nobody_twice(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await world.at(pt("14:00"), EEA2)

    async def killed(outbox: list[Notification]) -> None:
        return None  # the process died between the commit and the publish

    monkeypatch.setattr(world.decider, "_publish", killed)
    assert await world.at(pt("14:10")) == {}
    world.restart()
    await world.decider.refresh_index(force=True)
    assert await world.at(pt("14:10")) == {}
    assert await world.at(pt("14:15")) == {}
    async with world.store.connect() as conn:
        backup = await ledger.list_entries(conn, subscription_id=world.ids["backup"])
        assert len(backup) == 1 and backup[0].state == "pending"
        # Deliver's scheduler takes the key once the handoff has passed.
        later = pt("14:10") + ledger.HANDOFF + timedelta(seconds=1)
        assert backup[0].key in {e.key for e in await ledger.due(conn, later)}
    [run] = await world.runs()
    assert run.step == 1 and run.state is RunState.RUNNING
    third = await world.at(pt("14:20"))
    assert set(third) == {"director", "ops"}


async def test_quiet_hours_let_an_emergency_step_through_and_hold_a_lower_one(
        world: World) -> None:
    # A second, lower band: EEA 1 (warning) pages the backup after 10 minutes too, but the
    # backup's quiet hours (bypass emergency) hold it at 03:10.
    async with world.store.begin() as conn:
        low = await policy_store.create(conn, world.tenant, ladder(world.ids, {
            "name": "EEA 1 on-call", "min_severity": "warning", "steps": [
                {"subscriptions": ["oncall"]},
                {"after": "PT10M", "subscriptions": ["backup"]}]}), T0)
    eea1 = notice("202202801", Severity.WARNING, "03:00", "09:00", "03:00", level="1")
    eea2 = notice("202202802", Severity.EMERGENCY, "03:00", "09:00", "03:00")
    first = await world.at(pt("03:00"), eea1, eea2)
    assert "backup" not in first and first["oncall"][0].items[0].condition.id == eea1.id
    step = await world.at(pt("03:10"))
    assert [n.items[0].condition.id for n in step["backup"]] == [eea2.id]
    runs = {r.policy_id: r for r in await world.runs()}
    held = next(p for p in runs[low.id].pages if p.subscription_id == world.ids["backup"])
    assert held.key is not None and held.muted == "quiet_hours"
    async with world.store.connect() as conn:
        entry = await ledger.get(conn, held.key)
    assert entry is not None and entry.state == "suppressed"


async def test_the_all_clear_reaches_everyone_paged_and_no_held_one_unpaged(
        world: World) -> None:
    short = notice("202202711", Severity.EMERGENCY, "14:00", "14:15", "14:00")
    await world.at(pt("14:00"), short)
    assert set(await world.at(pt("14:10"))) == {"backup"}
    resolved = ESCALATIONS_ENDED.labels(outcome="resolved")._value.get()
    clear = await world.at(pt("14:15"))
    assert {k: [n.items[0].transition for n in v] for k, v in clear.items()} == {
        "oncall": [Transition.ENDED], "backup": [Transition.ENDED]}
    [run] = await world.runs()
    assert run.state is RunState.RESOLVED
    assert ESCALATIONS_ENDED.labels(outcome="resolved")._value.get() - resolved == 1
    assert await world.at(pt("14:20")) == {}
    assert "director" not in world.heard and "ops" not in world.heard


async def test_deleting_the_policy_cancels_its_runs(world: World) -> None:
    await world.at(pt("14:00"), EEA2)
    async with world.store.begin() as conn:
        assert await policy_store.delete(conn, world.policy_ids[0], world.tenant, pt("14:05"))
    [run] = await world.runs()
    assert run.state is RunState.CANCELLED and run.ended_reason == "policy_deleted"
    # And with the policy gone, the backup is an ordinary subscription again.
    assert await world.at(pt("14:10")) == {}


async def test_a_replayed_onset_starts_no_second_run(world: World) -> None:
    await world.at(pt("14:00"), EEA2)
    world.restart()
    await world.decider.refresh_index(force=True)
    await world.at(pt("14:01"), EEA2)
    assert len(await world.runs()) == 1
    assert escalate.onset_facts(world.heard["oncall"][0].items[0]) == {"severity": "emergency"}


def test_a_policy_is_a_ladder() -> None:
    ok = {"name": "x", "steps": [{"subscriptions": ["a"]},
                                 {"after": "PT1M", "subscriptions": ["b"]}]}
    assert PolicySpec.model_validate(ok).held() == {"b"}
    bad = [
        ({"steps": []}, "at least 1"),
        ({"steps": [{"subscriptions": ["a"]}] * 11}, "at most 10"),
        ({"steps": [{"after": "PT5M", "subscriptions": ["a"]}]}, "takes no 'after'"),
        ({"steps": [{"subscriptions": ["a"]}, {"subscriptions": ["b"]}]}, "needs 'after'"),
        ({"steps": [{"subscriptions": ["a"]}, {"after": "PT30S", "subscriptions": ["b"]}]},
         "at least PT1M"),
        ({"steps": [{"subscriptions": ["a"]}, {"after": "10 min", "subscriptions": ["b"]}]},
         "ISO 8601"),
        ({"steps": [{"subscriptions": ["a"]}, {"after": "PT5M", "subscriptions": ["a"]}]},
         "named twice"),
        ({"steps": [{"subscriptions": []}]}, "at least 1"),
    ]
    for change, message in bad:
        with pytest.raises(ValidationError, match=message):
            PolicySpec.model_validate({**ok, **change})


async def test_a_rise_in_severity_starts_the_ladder_again(world: World) -> None:
    await world.at(pt("14:00"), EEA2)
    worse = EEA2.model_copy(update={
        "severity": Severity.CRITICAL,
        "attributes": NoticeAttributes(notice_no="202202710", level="3", channel="replay"),
        "revision": revision_at(pt("14:05")), "observed_at": pt("14:05")})
    heard = await world.at(pt("14:05"), worse)
    assert [n.items[0].transition for n in heard["oncall"]] == [Transition.UPDATED]
    runs = {r.severity: r for r in await world.runs()}
    assert runs[Severity.EMERGENCY].state is RunState.CANCELLED
    assert runs[Severity.EMERGENCY].ended_reason == "superseded"
    assert runs[Severity.CRITICAL].state is RunState.RUNNING
    # The emergency run's step (14:10) is gone; the critical run's comes at 14:15, once.
    assert await world.at(pt("14:10")) == {}
    step = await world.at(pt("14:15"))
    assert [(n.escalation.run_id if n.escalation else None) for n in step["backup"]] == [
        runs[Severity.CRITICAL].id]


async def test_a_paused_subscription_of_a_step_is_skipped(world: World) -> None:
    await world.at(pt("14:00"), EEA2)
    async with world.store.begin() as conn:
        await sub_store.set_status(conn, world.ids["backup"], "paused", pt("14:01"))
    assert await world.at(pt("14:10")) == {}
    [run] = await world.runs()
    assert run.step == 1 and run.next_at == pt("14:20")
    assert set(await world.at(pt("14:20"))) == {"director", "ops"}


async def test_a_run_started_by_a_revision_wakes_the_ticker_for_its_next_step(
        world: World) -> None:
    """The ticker asleep for its longest (nothing was due) when a revision starts a run:
    it wakes at the run's next step, not at its next `max_tick_s` (the demo's six hours)."""
    world.decider = Decider(world.store, world.bus, world.clock,
                            DecideConfig(max_tick_s=6 * 3600.0))
    await world.decider.refresh_index(force=True)
    world.clock.set(pt("13:00"))
    stop = asyncio.Event()
    ticker = asyncio.create_task(world.decider.run_ticker(stop))

    async def deadline(expected: datetime) -> None:
        # The clock's sleepers, not an event: the ticker parks on the clock.
        while world.clock.next_deadline() != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(deadline(pt("19:00")), 10)
        world.clock.set(pt("14:00"))
        await world.decider.handle(EEA2)
        assert set(await world.drain()) == {"oncall"}  # the first step, at once
        await asyncio.wait_for(deadline(pt("14:10")), 10)
        world.clock.set(pt("14:10"))

        async def paged() -> set[str]:
            while not (second := set(await world.drain())):
                pass
            return second

        assert await asyncio.wait_for(paged(), 10) == {"backup"}
    finally:
        stop.set()
        await asyncio.wait_for(ticker, 10)
