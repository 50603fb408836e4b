"""Reminders every repeat interval, inhibited while a higher EEA level is in effect for the
same region; and restarts that re-derive without re-alerting."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from consumers.decide.decider import Decider
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.store import Store
from tests.decide.conftest import T0, add_subscription, add_tenant
from tests.decide.timeline import heatwave, replay

PT = ZoneInfo("America/Los_Angeles")
SEP6 = [c for c in heatwave() if c.window.start and c.window.start.astimezone(PT).day == 6
        and c.window.start.astimezone(PT).month == 9]


async def test_reminders_inhibited_by_eea3(store: Store) -> None:
    tenant = await add_tenant(store, "Reminder CCA")
    sub = await add_subscription(store, tenant, {
        "name": "hourly", "channel": {"type": "sms", "phone": "+14155550100"},
        "match": {"kinds": ["caiso.eea"], "min_severity": "warning"},
        "transitions": ["issued", "started", "ended", "reminder"], "repeat_interval": "PT1H"})
    clock = ManualClock(T0)
    decider = Decider(store, MemoryBus(), clock)
    await decider.refresh_index(force=True)
    await replay(decider, clock, SEP6, datetime(2022, 9, 7, 0, 0, tzinfo=PT))

    async with store.connect() as conn:
        entries = await ledger.list_entries(conn, subscription_id=sub, limit=1000)
    reminders = sorted(
        (f"{e.created_at.astimezone(PT):%H:%M}", item.condition.id, item.facts["period"],
         e.state, e.last_error)
        for e in entries for item in e.notification().items
        if item.transition.value == "reminder")
    eea2 = "caiso.notice:eea2-202209061355"
    eea1 = "caiso.notice:202202691"
    eea3 = "caiso.notice:202202696"
    assert reminders == sorted([
        # EEA 2 started at 16:00: reminded at 17:00, muted while the EEA 3 (17:26-20:00) is
        # in effect, reminded again once it has ended at 20:00.
        ("17:00", eea2, 1, "pending", None),
        ("18:00", eea2, 2, "suppressed", "inhibited"),
        ("19:00", eea2, 3, "suppressed", "inhibited"),
        ("20:00", eea2, 4, "pending", None),
        # The EEA 1 (16:00-21:00) sits under the EEA 2 all evening: every reminder muted.
        *[(f"{h}:00", eea1, h - 16, "suppressed", "inhibited") for h in (17, 18, 19, 20)],
        # The EEA 3 itself is never inhibited (nothing is higher).
        ("18:26", eea3, 1, "pending", None), ("19:26", eea3, 2, "pending", None),
    ])


async def test_restart_rederives_without_realerting(store: Store) -> None:
    """A new decide on the same store, fed every revision again and ticked through the same
    days, admits nothing new and publishes nothing."""
    tenant = await add_tenant(store, "Restart CCA")
    await add_subscription(store, tenant, {
        "name": "all", "channel": {"type": "email", "address": "ops@cca.example"},
        "match": {"min_severity": "advisory"}, "repeat_interval": "PT2H",
        "transitions": ["issued", "updated", "started", "ended", "cancelled", "reminder"]})
    end = datetime(2022, 9, 7, 6, 0, tzinfo=PT)
    clock = ManualClock(T0)
    first = Decider(store, MemoryBus(), clock)
    await first.refresh_index(force=True)
    await replay(first, clock, SEP6, end)
    async with store.connect() as conn:
        before = {e.key for e in await ledger.list_entries(conn, tenant_id=tenant, limit=10_000)}
    assert len(before) > 10

    bus = MemoryBus()
    sub = bus.subscribe(["capmon.notifications.v1"], "watch")
    await sub.start()
    second = Decider(store, bus, clock)
    await second.refresh_index(force=True)
    for c in SEP6:
        await second.handle(c)
    await second.tick()
    async with store.connect() as conn:
        after = {e.key for e in await ledger.list_entries(conn, tenant_id=tenant, limit=10_000)}
    assert after == before
    assert await sub.get(timeout=0.05) is None
