"""The polling engine shared by every source (docs/sources-caiso.md, The engine).

For each source it runs one loop: wait for the next slot of the source's schedule (aligned to
its cadence, offset after each interval mark, with jitter), poll, then either schedule the next
slot or back off exponentially (honouring Retry-After). A poll is `Source.poll(fetcher, now)`;
the engine turns its result into published revisions:

- a condition is published only when its `content_hash()` differs from the last revision the
  engine published for that id (so an unchanged observation is never republished);
- a `complete` result closes every open condition it no longer lists, through
  `Source.disappeared` (a Flex Alert that vanished has ended or was withdrawn);
- a fetch or parse failure is counted and logged and publishes nothing: no failure is ever
  read as "nothing is happening". A source that has had no good poll since start is reported
  blind by an active `source.health:<source>` condition at its first failure past
  `blind_after_s`; one that worked, after `stale_after_intervals` of its intervals without a
  good poll (producers/health.py). The first good poll after that publishes its `ended`
  revision. Retries back off exponentially up to the source's own interval, so a blip never
  leaves a 60-second source unpolled for minutes.

All time comes from the injected Clock, so tests drive schedules with a ManualClock.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog

from monitor import metrics
from monitor.bus import Bus
from monitor.clock import Clock, sleep_or
from monitor.envelope import condition_event
from monitor.errors import BusError, FetchError, ParseError
from monitor.events import Condition, revision_at
from monitor.source_health import HealthBoard
from monitor.supervision import TaskBoard, supervise
from monitor.topics import HEALTH
from producers.health import SourceHealth
from producers.source import Fetcher, PollResult, Response, Schedule, Source

log = structlog.get_logger(__name__)

# Closed conditions no longer listed are forgotten after this long (bounded memory).
_FORGET_CLOSED_AFTER = timedelta(days=2)


class PollOutcome(StrEnum):
    """The `outcome` label of capmon_source_polls_total."""

    OK = "ok"
    UNCHANGED = "unchanged"
    FETCH_ERROR = "fetch_error"
    PARSE_ERROR = "parse_error"
    PUBLISH_ERROR = "publish_error"
    INTERNAL_ERROR = "internal_error"

    @property
    def succeeded(self) -> bool:
        return self in (PollOutcome.OK, PollOutcome.UNCHANGED)


def next_slot(schedule: Schedule, now: datetime, rng: random.Random) -> datetime:
    """The next poll time: `offset_s` after the next multiple of `interval_s` (Unix epoch
    aligned, so 5-minute sources poll at :01:30, :06:30 ...), plus up to `jitter_s`."""
    t = now.timestamp()
    marks = math.floor((t - schedule.offset_s) / schedule.interval_s) + 1
    slot = marks * schedule.interval_s + schedule.offset_s
    if schedule.jitter_s > 0:
        slot += rng.uniform(0.0, schedule.jitter_s)
    return datetime.fromtimestamp(slot, UTC)


def backoff_delay(schedule: Schedule, failures: int, retry_after: float | None,
                  rng: random.Random) -> float:
    """Seconds before retrying after `failures` consecutive failures (>= 1).

    Exponential with +-10 % jitter (so several producers do not retry in lockstep), capped at
    `backoff_max_s` and at the source's own interval (a failing source is retried at least as
    often as a working one is polled); a server's Retry-After is a floor the cap never
    shortens.
    """
    base = schedule.backoff_initial_s * 2.0 ** max(0, failures - 1)
    cap = min(schedule.backoff_max_s, schedule.interval_s)
    delay = min(cap, base) * rng.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


@dataclass
class _State:
    source: Source
    health: SourceHealth
    published: dict[str, Condition] = field(default_factory=dict)
    failures: int = 0
    retry_after: float | None = None
    last_error: str | None = None
    last_request_mono: float | None = None
    # Set when a publish failed: the next poll asks unconditionally, since the content whose
    # ETag the fetcher now holds was never published (a 304 would hide it until it changed).
    refetch: bool = False


class _SpacedFetcher:
    """The fetcher as one source sees it: its timeout, and its minimum request spacing."""

    def __init__(self, inner: Fetcher, clock: Clock, schedule: Schedule, state: _State) -> None:
        self._inner = inner
        self._clock = clock
        self._schedule = schedule
        self._state = state

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = False,
        cache_bust: bool = False,
        timeout_s: float | None = None,
    ) -> Response:
        spacing = self._schedule.min_spacing_s
        if spacing > 0 and self._state.last_request_mono is not None:
            wait = self._state.last_request_mono + spacing - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
        self._state.last_request_mono = self._clock.monotonic()
        try:
            return await self._inner.get(
                url, params=params, headers=headers,
                conditional=conditional and not self._state.refetch,
                cache_bust=cache_bust, timeout_s=timeout_s or self._schedule.timeout_s)
        finally:
            # Spacing counts from the end of a request as well: a slow answer plus an
            # immediate next request is what trips OASIS's throttle.
            self._state.last_request_mono = self._clock.monotonic()


class Engine:
    def __init__(
        self,
        sources: Sequence[Source],
        fetcher: Fetcher,
        bus: Bus,
        clock: Clock,
        *,
        stale_after_intervals: int = 3,
        blind_after_s: float = 30.0,
        board: HealthBoard | None = None,
        tasks: TaskBoard | None = None,
        rng: random.Random | None = None,
    ) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate source names: {names}")
        self._fetcher = fetcher
        self._bus = bus
        self._clock = clock
        self._rng = rng or random.Random()
        self._board = board or HealthBoard()
        self._tasks = tasks or TaskBoard()
        now = clock.now()
        self._states = {
            s.name: _State(source=s, health=SourceHealth(
                s.name, s.schedule.interval_s, stale_after_intervals, now,
                blind_after_s=blind_after_s))
            for s in sources}
        self._board.polling(self._states)

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(self._states)

    def published(self, source_name: str) -> Mapping[str, Condition]:
        """The last revision published per condition id (for the status page and tests)."""
        return dict(self._states[source_name].published)

    def is_stale(self, source_name: str) -> bool:
        return self._states[source_name].health.is_stale

    def restore(self, stored: Mapping[str, Condition]) -> None:
        """Take up the `source.health` conditions a previous run left (before `run`): a
        source reported blind stays reported until a good poll ends it."""
        for name, condition in stored.items():
            state = self._states.get(name)
            if state is None:
                continue
            state.health.restore(condition)
            if state.health.is_stale:
                metrics.SOURCE_STALE.labels(name).set(1)
                self._board.report(condition)

    # -- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every source on its schedule until `stop` is set; in-flight polls finish."""
        log.info("engine_started", sources=list(self._states))
        # Each source's loop is supervised on its own: one that dies is restarted, the
        # others poll on.
        await asyncio.gather(*(
            supervise(f"produce.{name}", functools.partial(self._loop, st, stop), stop,
                      self._clock, self._tasks)
            for name, st in self._states.items()))
        log.info("engine_stopped")

    async def _loop(self, state: _State, stop: asyncio.Event) -> None:
        schedule = state.source.schedule
        # Poll at once on start (a fresh producer should know the state of the world), with a
        # little jitter so every source does not fire in the same millisecond.
        next_at = self._clock.now() + timedelta(
            seconds=self._rng.uniform(0.0, min(schedule.jitter_s, 5.0)))
        while await self._sleep_until(next_at, stop):
            outcome = await self.poll_once(state.source.name)
            next_at = self._next_after(state, outcome)

    def _next_after(self, state: _State, outcome: PollOutcome) -> datetime:
        schedule = state.source.schedule
        now = self._clock.now()
        if outcome.succeeded:
            return next_slot(schedule, now, self._rng)
        delay = backoff_delay(schedule, state.failures, state.retry_after, self._rng)
        retry_at = now + timedelta(seconds=delay)
        if not state.health.is_stale:
            # Retry no later than the moment the source turns stale, so staleness is
            # declared on time even under a long backoff (a Retry-After still wins).
            stale_at = state.health.deadline()
            floor = now + timedelta(seconds=state.retry_after or 0.0)
            retry_at = max(min(retry_at, stale_at), floor)
        log.info("source_retry_scheduled", source=state.source.name, failures=state.failures,
                 retry_in_s=round((retry_at - now).total_seconds(), 3))
        return retry_at

    async def _sleep_until(self, when: datetime, stop: asyncio.Event) -> bool:
        """Sleep on the clock until `when`; False as soon as `stop` is set."""
        while not stop.is_set():
            delay = (when - self._clock.now()).total_seconds()
            if delay <= 0:
                return True
            await sleep_or(self._clock, delay, stop)
        return False

    # -- one poll ------------------------------------------------------------------------------

    async def poll_once(self, source_name: str) -> PollOutcome:
        """Poll one source once and publish what changed. Never raises for source failures."""
        state = self._states[source_name]
        source = state.source
        started = self._clock.monotonic()
        now = self._clock.now()
        fetcher = _SpacedFetcher(self._fetcher, self._clock, source.schedule, state)
        try:
            result = await source.poll(fetcher, now)
        except FetchError as exc:
            metrics.FETCH_ERRORS.labels(source_name, exc.reason).inc()
            retry_after = exc.retry_after
            if retry_after is None and exc.reason == "rate_limited":
                # OASIS throttles with a bare 429 and documents "retry after 5 seconds":
                # never retry sooner than the source's own minimum spacing.
                retry_after = source.schedule.min_spacing_s or None
            outcome = await self._failed(state, exc.reason, str(exc), retry_after)
        except ParseError as exc:
            metrics.PARSE_ERRORS.labels(source_name, exc.reason).inc()
            outcome = await self._failed(state, exc.reason,
                                         f"its answer could not be read: {exc}", None,
                                         outcome=PollOutcome.PARSE_ERROR)
        except Exception as exc:  # a bug in a source must not stop the other sources
            log.exception("source_poll_crashed", source=source_name)
            metrics.PARSE_ERRORS.labels(source_name, "internal").inc()
            outcome = await self._failed(state, "internal",
                                         f"capmon failed to read it ({type(exc).__name__}: "
                                         f"{exc})", None, outcome=PollOutcome.INTERNAL_ERROR)
        else:
            outcome = await self._succeeded(state, result, self._clock.now())
        metrics.POLLS.labels(source_name, outcome.value).inc()
        metrics.POLL_DURATION.labels(source_name).observe(
            max(0.0, self._clock.monotonic() - started))
        return outcome

    async def _succeeded(self, state: _State, result: PollResult, now: datetime) -> PollOutcome:
        name = state.source.name
        try:
            if not result.unchanged:
                await self._publish_changes(state, result, now)
            if (ended := state.health.succeeded(now)) is not None:
                await self._publish(name, HEALTH, ended)
                state.health.published(ended)
                self._board.report(ended)
                log.info("source_recovered", source=name)
        except BusError as exc:
            # Nothing is marked published that was not; the next poll publishes it again.
            log.error("source_publish_failed", source=name, error=str(exc), reason=exc.reason)
            state.refetch = True
            return PollOutcome.PUBLISH_ERROR
        state.refetch = False
        state.failures = 0
        state.retry_after = None
        metrics.LAST_SUCCESS.labels(name).set(now.timestamp())
        metrics.SOURCE_STALE.labels(name).set(0)
        return PollOutcome.UNCHANGED if result.unchanged else PollOutcome.OK

    async def _publish_changes(self, state: _State, result: PollResult, now: datetime) -> None:
        source = state.source
        seen: set[str] = set()
        for condition in result.conditions:
            seen.add(condition.id)
            await self._publish_if_changed(state, condition, source.topic)
        if result.complete:
            for cid, last in list(state.published.items()):
                if cid in seen or not last.status.is_open:
                    continue
                await self._publish_if_changed(state, source.disappeared(last, now),
                                               source.topic)
        for cid, last in list(state.published.items()):
            if (cid not in seen and not last.status.is_open
                    and now - last.observed_at > _FORGET_CLOSED_AFTER):
                del state.published[cid]

    async def _publish_if_changed(self, state: _State, condition: Condition, topic: str) -> None:
        last = state.published.get(condition.id)
        if last is not None and last.content_hash() == condition.content_hash():
            return
        revision = condition.revision or revision_at(condition.observed_at)
        if last is not None and revision <= last.revision:
            revision = last.revision + 1
        revised = condition.model_copy(update={"revision": revision})
        await self._publish(state.source.name, topic, revised)
        state.published[revised.id] = revised

    async def _publish(self, source_name: str, topic: str, condition: Condition) -> None:
        event = condition_event(condition, source=f"/capmon/producers/{source_name}")
        await self._bus.publish(topic, condition.id, event)
        metrics.REVISIONS_PUBLISHED.labels(source_name, condition.kind.value).inc()
        log.info("condition_published", source=source_name, condition_id=condition.id,
                 kind=condition.kind.value, status=condition.status.value,
                 severity=condition.severity.value, revision=condition.revision)

    async def _failed(self, state: _State, reason: str, message: str,
                      retry_after: float | None, *,
                      outcome: PollOutcome = PollOutcome.FETCH_ERROR) -> PollOutcome:
        name = state.source.name
        state.failures += 1
        state.retry_after = retry_after
        state.last_error = message[:500]
        log.warning("source_poll_failed", source=name, outcome=outcome.value, reason=reason,
                    error=state.last_error, failures=state.failures, retry_after=retry_after)
        now = self._clock.now()
        stale = state.health.failed(now, reason, state.last_error)
        if state.health.is_stale or stale is not None:
            metrics.SOURCE_STALE.labels(name).set(1)
        if stale is not None:
            log.warning("source_stale", source=name, reason=reason, error=state.last_error,
                        missed_intervals=state.health.missed_intervals(now))
            try:
                await self._publish(name, HEALTH, stale)
                state.health.published(stale)
                self._board.report(stale)
            except BusError as exc:
                log.error("source_health_publish_failed", source=name, error=str(exc))
        return outcome
