"""Every source `capmon produce` can run: one factory `(settings) -> Source` per line.

The runner builds the enabled ones (`settings.sources.enabled`, empty = all). A new source is
one module in producers/ and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.config import Settings
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
    """The enabled sources; an unknown name in `enabled` is a configuration error."""
    sources = [factory(settings) for factory in CATALOG]
    wanted = set(settings.sources.enabled)
    if not wanted:
        return sources
    # The notice mailbox is not a polled source; the runner starts it (see producers/runner.py).
    wanted.discard("caiso-notices")
    known = {s.name for s in sources}
    unknown = wanted - known
    if unknown:
        from monitor.errors import ConfigError

        raise ConfigError(f"unknown source(s) in sources.enabled: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return [s for s in sources if s.name in wanted]
