"""How a long-running capmon process has CPython collect its garbage.

At the interpreter's default thresholds, a fan-out of one alert to 1,000 subscribers ran some
140 young and one or two full collections, and each full one walked every object the process
holds: SQLAlchemy's and pydantic's machinery, the compiled queries, the subscription index.
That was 200-300 ms of a 1.1 s fan-out (bench/fanout.py). So once a process has started,
what it built is moved out of the collector's sight (`gc.freeze`; those objects live as long
as the process anyway), and the young generation is collected every 10,000 allocations rather
than 700, which leaves the same fan-out a few collections of 10-30 ms in all. Reference
counting still frees everything that is not in a cycle at once, so memory is not held longer.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations (net of deallocations) between young collections
OLDER = 10      # collections of a generation between collections of the next


def settle_after_start() -> None:
    """Call once the process has built what it keeps: its runtime open, before the work."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, OLDER, OLDER)
