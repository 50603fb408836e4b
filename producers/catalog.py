"""Every source `capmon produce` can run: one factory `(settings) -> Source` per line.

The runner builds the enabled ones (`settings.sources.enabled`, empty = all). A new source is
one module in producers/ and one line here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from monitor.config import Settings
from monitor.errors import ConfigError
from producers.caiso_demand import DemandSource
from producers.caiso_flex import FlexSource
from producers.caiso_oasis import OasisSource
from producers.caiso_ra import RaOutlookSource
from producers.caiso_stats import StatsSource
from producers.sce_dr import sce_dr_source
from producers.source import Source

SourceFactory = Callable[[Settings], Source]

CATALOG: list[SourceFactory] = [
    lambda s: StatsSource(s.sources.caiso_outlook_url),
    lambda s: DemandSource(s.sources.caiso_outlook_url),
    lambda s: FlexSource(s.sources.caiso_flex_url),
    lambda s: OasisSource(s.sources.caiso_oasis_url),
    lambda s: RaOutlookSource(s.sources.caiso_outlook_url),
    sce_dr_source,
]


def build_sources(settings: Settings) -> list[Source]:
    """The enabled sources, with the configured intervals; an unknown name in `enabled` or
    `intervals` is a configuration error."""
    sources = [_scheduled(factory(settings), settings) for factory in CATALOG]
    known = {s.name for s in sources}
    unknown_intervals = set(settings.sources.intervals) - known
    if unknown_intervals:
        raise ConfigError(f"unknown source(s) in sources.intervals: "
                          f"{', '.join(sorted(unknown_intervals))}; known: "
                          f"{', '.join(sorted(known))}")
    wanted = set(settings.sources.enabled)
    if not wanted:
        return sources
    # The notice mailbox is not a polled source; the runner starts it (see producers/runner.py).
    wanted.discard("caiso-notices")
    unknown = wanted - known
    if unknown:
        raise ConfigError(f"unknown source(s) in sources.enabled: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return [s for s in sources if s.name in wanted]


def _scheduled(source: Source, settings: Settings) -> Source:
    """Apply `sources.intervals` and `sources.jitter` to the source's own schedule."""
    schedule = source.schedule
    interval = settings.sources.intervals.get(source.name)
    if interval is not None:
        if interval <= 0:
            raise ConfigError(f"sources.intervals.{source.name} must be positive")
        # The offset after each mark keeps its meaning only while it fits in the interval.
        schedule = dataclasses.replace(schedule, interval_s=interval,
                                       offset_s=schedule.offset_s % interval)
    if not settings.sources.jitter:
        schedule = dataclasses.replace(schedule, jitter_s=0.0)
    if schedule is not source.schedule:
        source.schedule = schedule
    return source
