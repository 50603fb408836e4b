"""The 2022-08-31 .. 09-09 heat wave as condition revisions, built from the facts in
tests/fixtures/decide/heatwave_2022-08-31_to_09-09_timeline.derived.json, and a replay driver
that moves a ManualClock from one interesting instant to the next."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from consumers.decide.decider import Decider
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, revision_at
from monitor.notifications import Notification, notification_from_event
from monitor.store import Store
from monitor.topics import NOTIFICATIONS
from tests.decide.conftest import T0, add_subscription, add_tenant

TIMELINE = (Path(__file__).parent.parent / "fixtures" / "decide"
            / "heatwave_2022-08-31_to_09-09_timeline.derived.json")

_KIND = {
    "RMO": (Kind.CAISO_RMO, Severity.ADVISORY, None),
    "FLEX_ALERT": (Kind.CAISO_FLEX_ALERT, Severity.WATCH, None),
    "EEA_WATCH": (Kind.CAISO_EEA, Severity.WATCH, "WATCH"),
    "EEA1": (Kind.CAISO_EEA, Severity.WARNING, "1"),
    "EEA2": (Kind.CAISO_EEA, Severity.EMERGENCY, "2"),
    "EEA3": (Kind.CAISO_EEA, Severity.CRITICAL, "3"),
    "TRANSMISSION_EMERGENCY": (Kind.CAISO_TRANSMISSION_EMERGENCY, Severity.WARNING, None),
}


def condition_id(n: dict[str, str | None]) -> str:
    # As the CAISO producer files it: a superseding notice is a revision of the condition it
    # supersedes (producers/caiso_notices.py `NoticeBook`).
    if n.get("supersedes_notice_no"):
        return f"caiso.notice:{n['supersedes_notice_no']}"
    if n["notice_no"]:
        return f"caiso.notice:{n['notice_no']}"
    if n["type"] == "FLEX_ALERT":
        return f"caiso.flex:{str(n['effective_start'])[:10]}"
    issued = datetime.fromisoformat(str(n["issued_at"]))
    return f"caiso.notice:{str(n['type']).lower()}-{issued:%Y%m%d%H%M}"


def heatwave() -> list[Condition]:
    """One revision per notice, observed when it was issued (Flex Alerts: when in effect)."""
    notices = json.loads(TIMELINE.read_text())["notices"]
    out = []
    for n in notices:
        kind, severity, level = _KIND[n["type"]]
        start = datetime.fromisoformat(n["effective_start"])
        end = datetime.fromisoformat(n["effective_end"])
        observed = datetime.fromisoformat(n["issued_at"] or n["effective_start"])
        supersedes = (n["supersedes_notice_no"],) if n.get("supersedes_notice_no") else ()
        out.append(Condition(
            id=condition_id(n), kind=kind, severity=severity,
            status=Status.SCHEDULED if observed < start else Status.ACTIVE,
            window={"start": start, "end": end}, regions=(n["region"],),
            attributes=NoticeAttributes(
                notice_no=n["notice_no"], level=level, reason=n["reason"],
                issued_at=datetime.fromisoformat(n["issued_at"]) if n["issued_at"] else None,
                supersedes=supersedes, channel="replay"),
            revision=revision_at(observed), observed_at=observed))
    return sorted(out, key=lambda c: (c.observed_at, c.id))


async def replay(decider: Decider, clock: ManualClock, revisions: list[Condition],
                 until: datetime) -> None:
    """Hand each revision to decide at its observation time, ticking at every instant the
    clock alone changes something (window edges, reminders, group flushes) in between."""
    pending = sorted(revisions, key=lambda c: c.observed_at)
    i = 0
    while True:
        now = clock.now()
        wake = await decider.next_wakeup(now)
        if wake is not None and wake <= now:  # a flush the last tick could not do
            wake = now + timedelta(seconds=1)
        nxt = [t for t in (pending[i].observed_at if i < len(pending) else None, wake)
               if t is not None]
        if not nxt:
            return
        t = min(nxt)
        if t > until:
            clock.set(until)
            await decider.tick()
            return
        if t > now:
            clock.set(t)
        while i < len(pending) and pending[i].observed_at <= clock.now():
            await decider.handle(pending[i])
            i += 1
        await decider.tick()


@dataclass
class Decided:
    tenant: str
    ids: dict[str, str]  # subscription name -> id
    published: dict[str, list[Notification]]  # subscription name -> its notifications


async def decide_replay(store: Store, revisions: list[Condition], until: datetime,
                        subs: dict[str, dict[str, Any]],
                        prepare: Callable[[str], Awaitable[None]] | None = None) -> Decided:
    """One tenant with these subscriptions (by name), the revisions replayed through decide
    until `until`, and what decide published for each subscription. `prepare` is handed the
    tenant's id before the replay starts (to add what the tenant has besides subscriptions)."""
    tenant = await add_tenant(store, "Clean Power Alliance")
    ids = {name: await add_subscription(store, tenant, {"name": name, **spec})
           for name, spec in subs.items()}
    if prepare is not None:
        await prepare(tenant)
    by_id = {v: k for k, v in ids.items()}
    bus = MemoryBus()
    await bus.start()
    clock = ManualClock(T0)
    decider = Decider(store, bus, clock)
    await decider.refresh_index(force=True)
    reader = bus.subscribe([NOTIFICATIONS], "test-reader")
    await reader.start()
    await replay(decider, clock, revisions, until)
    published: dict[str, list[Notification]] = {name: [] for name in subs}
    while (msg := await reader.get(timeout=0.05)) is not None:
        n = notification_from_event(msg.event())
        published[by_id[n.subscription_id]].append(n)
        await reader.ack(msg)
    await reader.close()
    await bus.close()
    return Decided(tenant, ids, published)
