"""The `decide` role: condition revisions in, notifications out (docs/decide.md).

For each revision, in one store transaction: record it (latest + history), derive its
transitions against the stored view, and run the pipeline (consumers/decide/stages):

    match -> thresholds -> remind -> beat -> hold -> clear -> page -> mute -> dedup -> group
      -> record -> admit

which ends with the due notifications admitted to the ledger. After commit they are
published to `capmon.notifications.v1`. A ticker does what the clock alone changes: windows
that start or end, reminders every repeat interval, batches whose group wait is over, the
next step of an escalation nobody acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from pydantic import ValidationError

from consumers.decide import state
from consumers.decide.heartbeat import next_heartbeat
from consumers.decide.index import SubscriptionIndex
from consumers.decide.rules import derive, reminder_period, superseded_ids
from consumers.decide.stages import Context, Grouping, Stage, escalate, run_pipeline
from consumers.decide.stages import group as groups
from consumers.decide.stages.admit import admit
from consumers.decide.stages.match import beat, match, remind
from consumers.decide.stages.mute import mute
from consumers.decide.stages.thresholds import thresholds
from monitor.bus import Bus
from monitor.bus.base import Message
from monitor.bus.runner import consume
from monitor.clock import Clock, sleep_or
from monitor.config import Settings
from monitor.envelope import condition_from_event
from monitor.errors import BusError, CapmonError
from monitor.events import Condition, Kind, Severity
from monitor.metrics import DECIDE_DURATION
from monitor.notifications import Notification, notification_record
from monitor.runtime import Runtime
from monitor.source_health import POLLED_SOURCES, enabled_sources
from monitor.store import Store, escalations
from monitor.store import conditions as condition_store
from monitor.store import escalation_policies as policy_store
from monitor.store import silences as silence_store
from monitor.store import subscriptions as sub_store
from monitor.supervision import supervise
from monitor.topics import CONDITION_TOPICS, CONDITIONS_DLQ, NOTIFICATIONS

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
    # Where revisions go that cannot be decoded or keep failing (monitor/bus/runner.py).
    dead_letters: str = CONDITIONS_DLQ
    # The sources capmon watches, for heartbeats (every one by default).
    sources: tuple[str, ...] = POLLED_SOURCES

    @classmethod
    def from_settings(cls, settings: Settings) -> DecideConfig:
        d = settings.decide
        return cls(group_wait_s=d.group_wait_s, group_interval_s=d.group_interval_s,
                   refresh_s=d.refresh_s, max_tick_s=d.max_tick_s,
                   sources=enabled_sources(settings))


PUBLISH_SLICE = 500
# The tables the index holds in memory: a write to any of them reloads it.
_WATCHED = (sub_store.WATCH, silence_store.WATCH, policy_store.WATCH)

PIPELINE: tuple[Stage, ...] = (match, thresholds, remind, beat, escalate.hold,
                                escalate.clear, escalate.page, mute, groups.dedup,
                                groups.group, escalate.record, admit)


class Decider:
    def __init__(self, store: Store, bus: Bus, clock: Clock,
                 config: DecideConfig | None = None) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.config = config or DecideConfig()
        self.grouping = Grouping(wait=timedelta(seconds=self.config.group_wait_s),
                                 interval=timedelta(seconds=self.config.group_interval_s),
                                 urgent=self.config.urgent_severity)
        self.index = SubscriptionIndex()
        self._version: tuple[tuple[int, str], ...] | None = None
        self._local: tuple[int, ...] | None = None
        self._refreshed_at = -1e18
        self.nudge = asyncio.Event()
        # When the last tick ran (heartbeats due since then go out on the next).
        self._ticked_at: datetime | None = None
        # The consumer and the ticker share one decider: their work on views, items and
        # batches is serialized, so a batch is never closed by both at once.
        self._lock = asyncio.Lock()

    # -- the subscription index --------------------------------------------------------------

    async def refresh_index(self, *, force: bool = False) -> None:
        mono = self.clock.monotonic()
        local = tuple(w.local_changes for w in _WATCHED)
        if not force and local == self._local and mono - self._refreshed_at < self.config.refresh_s:
            return
        async with self.store.connect() as conn:
            version = tuple([await w.version(conn) for w in _WATCHED])
            if force or local != self._local or version != self._version:
                self.index = SubscriptionIndex(
                    await sub_store.active(conn),
                    await silence_store.unexpired(conn, self.clock.now()),
                    await policy_store.every_policy(conn))
                log.info("subscription_index_loaded", subscriptions=len(self.index))
        self._version, self._local, self._refreshed_at = version, local, mono

    # -- revisions ---------------------------------------------------------------------------

    async def handle(self, c: Condition) -> None:
        """Decide on one revision; safe to call again with the same revision (idempotent)."""
        async with self._lock:
            started = self.clock.monotonic()
            outbox = await self._decide(c)
            await self._publish(outbox)
            DECIDE_DURATION.observe(max(0.0, self.clock.monotonic() - started))

    async def _decide(self, c: Condition) -> list[Notification]:
        await self.refresh_index()
        now = self.clock.now()
        async with self.store.begin() as conn:
            previous = await condition_store.record_revision(conn, c, now)
            if previous is not None and c.revision <= previous:
                return []  # an older or repeated revision: recorded in history, nothing new
            prev = await state.get_view(conn, c.id)
            view, derived = derive(prev, c, now)
            await state.save_view(conn, view, now, exists=prev is not None)
            for other in superseded_ids(c):
                if await state.supersede(conn, other, now):
                    log.info("condition_superseded", condition_id=other, by=c.id)
            ctx = Context(now=now, conn=conn, index=self.index, grouping=self.grouping,
                          changes=((c, tuple(derived)),), revision=c)
            await self._run(ctx)
        return ctx.outbox

    async def _run(self, ctx: Context) -> None:
        cands = await run_pipeline(PIPELINE, ctx)
        if ctx.runs_started or any(c.due_at is not None and c.due_at > ctx.now for c in cands):
            # A batch leaves later, or an escalation run's next step is due later: the ticker
            # recomputes its sleep (a tick for every revision would cost each alert a
            # second transaction beside its delivery).
            self.nudge.set()

    async def _publish(self, outbox: list[Notification]) -> None:
        """Hand committed notifications to deliver. A failure loses nothing: they are due in
        the ledger, where deliver's scheduler finds them."""
        if not outbox:
            return
        try:
            # In slices: deliver starts on the first while the rest are encoded, and a
            # fan-out to 10,000 never holds 10,000 encoded events at once.
            for at in range(0, len(outbox), PUBLISH_SLICE):
                await self.bus.publish_records(self.config.notifications_topic, [
                    notification_record(n) for n in outbox[at:at + PUBLISH_SLICE]])
        except CapmonError as exc:
            log.warning("notifications_publish_failed", notifications=len(outbox),
                        error=str(exc), reason=exc.reason)
            return
        log.info("notifications_published", notifications=len(outbox),
                 first_key=outbox[0].key, severity=max(n.severity for n in outbox).value)

    # -- the clock ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Apply what time alone changes: window starts/ends, reminders, due batches."""
        async with self._lock:
            outbox = await self._tick()
            await self._publish(outbox)

    async def _tick(self) -> list[Notification]:
        await self.refresh_index()
        now = self.clock.now()
        async with self.store.begin() as conn:
            changes = []
            current = []
            for view, c in await state.open_views(conn):
                new, derived = derive(view, c, now)
                if derived or new.status != view.status:
                    await state.save_view(conn, new, now, exists=True)
                    changes.append((c, tuple(derived)))
                current.append((new, c))
            active = tuple((v, c) for v, c in current if v.status == "active")
            ctx = Context(now=now, conn=conn, index=self.index, grouping=self.grouping,
                          changes=tuple(changes), active=active,
                          inhibitors=tuple(c for _, c in active if c.kind == Kind.CAISO_EEA),
                          since=self._ticked_at or now, sources=self.config.sources)
            await self._run(ctx)
        self._ticked_at = now
        return ctx.outbox

    async def next_wakeup(self, now: datetime) -> datetime | None:
        """The next instant the clock alone changes something (for the ticker and replays)."""
        times: list[datetime] = []
        async with self.store.connect() as conn:
            due = await groups.next_due(conn)
            if due is not None:
                times.append(due)
            step_at = await escalations.next_at(conn)
            if step_at is not None:
                times.append(step_at)
            pairs = await state.open_views(conn)
        repeats = self.index.repeat_intervals()
        beat_at = next_heartbeat(((s.id, hb) for s, hb in self.index.heartbeats()), now)
        if beat_at is not None:
            times.append(beat_at)
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
        if (due is not None and due <= now) or (step_at is not None and step_at <= now):
            return now
        return min(later) if later else None

    async def run_ticker(self, stop: asyncio.Event) -> None:
        again = False
        while not stop.is_set():
            # Wake-ups are counted from before the tick: whatever came due while it ran (the
            # clock jumping, a window ending) gets one more tick at once, without a sleep
            # (a replay's clock may not move until decide is idle).
            before = self.clock.now()
            try:
                await self.tick()
                now = self.clock.now()
                wake = await self.next_wakeup(before)
            except CapmonError as exc:
                log.warning("decide_tick_failed", error=f"{type(exc).__name__}: {exc}")
                wake = None
                now = self.clock.now()
            if wake is not None and wake <= now and before < now and not again:
                again = True
                continue
            again = False
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
    ticker = asyncio.create_task(supervise("decide.ticker", lambda: decider.run_ticker(stop),
                                           stop, rt.clock, rt.tasks))

    async def handler(message: Message) -> None:
        await decider.handle(decode(message))

    cfg = decider.config
    try:
        await supervise("decide.consumer", lambda: consume(
            rt.bus, cfg.condition_topics, cfg.group, handler, stop, rt.clock,
            dead_letters=cfg.dead_letters), stop, rt.clock, rt.tasks)
    finally:
        stop.set()
        await ticker
