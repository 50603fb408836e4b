"""Every source `capmon produce` can run: one factory `(settings) -> Source` per line.

The runner builds the enabled ones (`settings.sources.enabled`, empty = all). A new source is
one module in producers/ and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.config import Settings
from producers.sce_dr import sce_dr_source
from producers.source import Source

SourceFactory = Callable[[Settings], Source]

CATALOG: list[SourceFactory] = [
    sce_dr_source,
]


def build_sources(settings: Settings) -> list[Source]:
    """The enabled sources; an unknown name in `enabled` is a configuration error."""
    sources = [factory(settings) for factory in CATALOG]
    wanted = set(settings.sources.enabled)
    if not wanted:
        return sources
    known = {s.name for s in sources}
    unknown = wanted - known
    if unknown:
        from monitor.errors import ConfigError

        raise ConfigError(f"unknown source(s) in sources.enabled: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return [s for s in sources if s.name in wanted]
