"""The `decide` role: condition revisions in, notifications out (DESIGN section 5).

For each revision, in one store transaction: record it (latest + history), derive its
transitions against the stored view, match them against the subscription index, evaluate
thresholds, mute (inhibition, quiet hours), and log each candidate's key once (dedup) into a
pending batch per subscriber (grouping). After commit, due batches are published and
admitted (consumers/stages/publish.py). A ticker does what the clock alone changes: windows
that start or end, reminders every repeat interval, batches whose group wait is over.

    match -> thresholds -> mute -> dedup/group -> publish
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers import state
from consumers.index import SubscriptionIndex
from consumers.rules import Derived, View, derive, reminder_period, superseded_ids
from consumers.stages import Candidate, Context, thresholds
from consumers.stages import group as groups
from consumers.stages.mute import mute_reason
from consumers.stages.publish import flush, record_suppressed
from monitor.bus import Bus
from monitor.bus.base import Message
from monitor.bus.runner import consume
from monitor.clock import Clock, sleep_or
from monitor.config import Settings
from monitor.envelope import condition_from_event
from monitor.errors import BusError, StoreError
from monitor.events import Condition, Kind, Severity
from monitor.metrics import DECIDE_DURATION, TRANSITIONS
from monitor.notifications import NotificationItem, Transition, notification_key
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store import conditions as condition_store
from monitor.store import subscriptions as sub_store
from monitor.topics import CONDITION_TOPICS, NOTIFICATIONS

log = structlog.get_logger(__name__)
GROUP = "capmon-decide"


@dataclass(frozen=True)
class DecideConfig:
    # A new group waits this long for siblings before it leaves (0: the first goes at once).
    group_wait_s: float = 0.0
    # After a notification, more for the same subscriber wait this long and leave together.
    group_interval_s: float = 60.0
    # Items at or above this severity skip the group interval (only group_wait holds them) and
    # pull their subscriber's pending batch forward: an EEA 3 never waits behind a Flex Alert.
    urgent_severity: Severity = Severity.CRITICAL
    # How often to look for subscription changes made by other processes.
    refresh_s: float = 5.0
    # The ticker never sleeps longer than this.
    max_tick_s: float = 30.0
    # Where to read conditions and write notifications, and as which consumer group.
    condition_topics: tuple[str, ...] = CONDITION_TOPICS
    notifications_topic: str = NOTIFICATIONS
    group: str = GROUP

    @classmethod
    def from_settings(cls, settings: Settings) -> DecideConfig:
        d = settings.decide
        return cls(group_wait_s=d.group_wait_s, group_interval_s=d.group_interval_s,
                   refresh_s=d.refresh_s, max_tick_s=d.max_tick_s)


class Decider:
    def __init__(self, store: Store, bus: Bus, clock: Clock,
                 config: DecideConfig | None = None) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.config = config or DecideConfig()
        self.index = SubscriptionIndex()
        self._version: tuple[int, str] | None = None
        self._local = -1
        self._refreshed_at = -1e18
        self.nudge = asyncio.Event()
        # The consumer and the ticker share one decider: their work on views, items and
        # batches is serialized, so a batch is never published by both at once.
        self._lock = asyncio.Lock()

    # -- the subscription index --------------------------------------------------------------

    async def refresh_index(self, *, force: bool = False) -> None:
        mono = self.clock.monotonic()
        local = sub_store.local_changes()
        if not force and local == self._local and mono - self._refreshed_at < self.config.refresh_s:
            return
        async with self.store.connect() as conn:
            version = await sub_store.version(conn)
            if force or local != self._local or version != self._version:
                self.index = SubscriptionIndex(await sub_store.active(conn))
                log.info("subscription_index_loaded", subscriptions=len(self.index))
        self._version, self._local, self._refreshed_at = version, local, mono

    # -- revisions ---------------------------------------------------------------------------

    async def handle(self, c: Condition) -> None:
        """Decide on one revision; safe to call again with the same revision (idempotent)."""
        async with self._lock:
            await self._handle(c)

    async def _handle(self, c: Condition) -> None:
        started = self.clock.monotonic()
        await self.refresh_index()
        now = self.clock.now()
        try:
            admitted = 0
            async with self.store.begin() as conn:
                previous = await condition_store.record_revision(conn, c, now)
                if previous is None or c.revision > previous:
                    admitted = await self._decide(conn, c, now)
            # Only what this revision admitted can be due now; batches that come due later
            # are the ticker's (most revisions, e.g. a new demand figure, admit nothing).
            if admitted:
                await self._flush(now)
        except SQLAlchemyError as exc:
            raise StoreError(f"store failed while deciding {c.id}: {type(exc).__name__}",
                             retriable=True) from exc
        DECIDE_DURATION.observe(max(0.0, self.clock.monotonic() - started))

    async def _decide(self, conn: AsyncConnection, c: Condition, now: datetime) -> int:
        prev = await state.get_view(conn, c.id)
        view, derived = derive(prev, c, now)
        await state.save_view(conn, view, now, exists=prev is not None)
        for other in superseded_ids(c):
            if await state.supersede(conn, other, now):
                log.info("condition_superseded", condition_id=other, by=c.id)
        cands = self.candidates(c, derived)
        cands += await thresholds.evaluate(conn, self.index, c, now)
        return await self.admit(conn, cands, Context(now=now))

    def candidates(self, c: Condition, derived: list[Derived]) -> list[Candidate]:
        out: list[Candidate] = []
        if not derived:
            return out
        subs = self.index.match(c)
        for d in derived:
            TRANSITIONS.labels(kind=c.kind.value, transition=d.transition.value).inc()
            item = NotificationItem(transition=d.transition, condition=c, facts=d.facts)
            for sub in subs:
                if sub.hears(d.transition.value):
                    key = notification_key(sub.id, c.id, d.transition, d.key_facts)
                    out.append(Candidate(sub=sub, key=key, severity=c.severity, item=item))
        return out

    async def admit(self, conn: AsyncConnection, cands: list[Candidate], ctx: Context) -> int:
        """Mute, dedup and group candidates (inside the caller's transaction); returns how
        many candidates there were (0: nothing can have become due)."""
        if not cands:
            return 0
        seen = await groups.known(conn, (c.key for c in cands))
        wait = timedelta(seconds=self.config.group_wait_s)
        interval = timedelta(seconds=self.config.group_interval_s)
        fresh: list[Candidate] = []
        for cand in cands:
            if cand.key in seen:
                continue
            seen.add(cand.key)
            reason = mute_reason(cand, ctx)
            if reason is not None:
                await record_suppressed(conn, cand, reason, ctx.now)
            else:
                fresh.append(cand)
        if not fresh:
            return len(cands)
        urgent = {c.sub.id for c in fresh if c.severity >= self.config.urgent_severity}
        dues = await groups.due_times(conn, {c.sub.id for c in fresh} - urgent, ctx.now,
                                      wait=wait, interval=interval)
        for sub_id in urgent:
            dues[sub_id] = ctx.now + wait
            await groups.expedite(conn, sub_id, dues[sub_id])
        await groups.add_pending_many(conn, [(c, dues[c.sub.id]) for c in fresh], ctx.now)
        if any(due > ctx.now for due in dues.values()):
            self.nudge.set()
        return len(cands)

    async def flush(self, now: datetime) -> int:
        async with self._lock:
            return await self._flush(now)

    async def _flush(self, now: datetime) -> int:
        try:
            return await flush(self.store, self.bus, self.index.get, now,
                               topic=self.config.notifications_topic)
        except BusError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store failed while publishing: {type(exc).__name__}",
                             retriable=True) from exc

    # -- the clock ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Apply what time alone changes: window starts/ends, reminders, due batches."""
        async with self._lock:
            await self._tick()

    async def _tick(self) -> None:
        await self.refresh_index()
        now = self.clock.now()
        async with self.store.begin() as conn:
            pairs = await state.open_views(conn)
            cands: list[Candidate] = []
            current: list[tuple[View, Condition]] = []
            for view, c in pairs:
                new, derived = derive(view, c, now)
                if derived or new.status != view.status:
                    await state.save_view(conn, new, now, exists=True)
                    cands += self.candidates(c, derived)
                current.append((new, c))
            active = [(v, c) for v, c in current if v.status == "active"]
            inhibitors = tuple(c for _, c in active if c.kind == Kind.CAISO_EEA)
            cands += self.reminders(active, now)
            await self.admit(conn, cands, Context(now=now, inhibitors=inhibitors))
        await self._flush(now)

    def reminders(self, active: list[tuple[View, Condition]], now: datetime) -> list[Candidate]:
        out: list[Candidate] = []
        for view, c in active:
            for sub in self.index.match(c):
                if sub.repeat is None or not sub.hears("reminder"):
                    continue
                period = reminder_period(view, now, sub.repeat.total_seconds())
                if period < 1:
                    continue
                facts = {"period": period, "since": view.changed_at.isoformat()}
                item = NotificationItem(transition=Transition.REMINDER, condition=c, facts=facts)
                key = notification_key(sub.id, c.id, Transition.REMINDER, facts)
                out.append(Candidate(sub=sub, key=key, severity=c.severity, item=item))
        return out

    async def next_wakeup(self, now: datetime) -> datetime | None:
        """The next instant the clock alone changes something (for the ticker and replays)."""
        times: list[datetime] = []
        async with self.store.connect() as conn:
            due = await groups.next_due(conn)
            if due is not None:
                times.append(due)
            pairs = await state.open_views(conn)
        repeats = self.index.repeat_intervals()
        for view, c in pairs:
            if view.status == "scheduled" and c.window.start is not None:
                times.append(c.window.start)
            if c.window.end is not None:
                times.append(c.window.end)
            if view.status == "active":
                for every in repeats:
                    n = reminder_period(view, now, every.total_seconds())
                    times.append(view.changed_at + every * (n + 1))
        later = [t for t in times if t > now]
        if due is not None and due <= now:
            return now
        return min(later) if later else None

    async def run_ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
                now = self.clock.now()
                wake = await self.next_wakeup(now)
            except (StoreError, BusError, SQLAlchemyError) as exc:
                log.warning("decide_tick_failed", error=f"{type(exc).__name__}: {exc}")
                wake = None
                now = self.clock.now()
            delay = self.config.max_tick_s if wake is None else (wake - now).total_seconds()
            delay = min(max(delay, 0.01), self.config.max_tick_s)
            self.nudge.clear()
            await sleep_or(self.clock, delay, self.nudge, stop)


def decode(message: Message) -> Condition:
    event = message.event()
    try:
        return condition_from_event(event)
    except ValidationError as exc:
        raise BusError(f"invalid condition on {message.key!r}: {exc.error_count()} errors",
                       reason="schema") from None


async def run(rt: Runtime, stop: asyncio.Event, config: DecideConfig | None = None) -> None:
    decider = Decider(rt.store, rt.bus, rt.clock,
                      config or DecideConfig.from_settings(rt.settings))
    await decider.refresh_index(force=True)
    # Batches a crash left published-but-unadmitted (or due) go out before anything new.
    await decider.flush(rt.clock.now())
    ticker = asyncio.create_task(decider.run_ticker(stop))

    async def handler(message: Message) -> None:
        await decider.handle(decode(message))

    try:
        await consume(rt.bus, decider.config.condition_topics, decider.config.group, handler,
                      stop, rt.clock)
    finally:
        stop.set()
        await ticker
