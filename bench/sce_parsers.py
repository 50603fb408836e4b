"""How long the SCE parsers take on the fixtures: one poll's worth of work, and the history.

Run: python bench/sce_parsers.py   (prints a table; the last line is one JSON object)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from producers import sce_locations  # noqa: E402
from producers.sce_api import parse_event_store_conditions  # noqa: E402
from producers.sce_history import history_conditions  # noqa: E402
from producers.sce_html import parse_status_page_conditions  # noqa: E402

SITE = ROOT / "tests" / "fixtures" / "sce" / "site"
HISTORY = ROOT / "tests" / "fixtures" / "sce" / "history"
NOW = datetime(2010, 9, 27, 22, 20, tzinfo=UTC)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, p95) milliseconds per call."""
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    store = (SITE / "event_store_2010-09-27_transmission_emergency.synthetic.json").read_bytes()
    page = (SITE / "status_commercial_2010-09-27_transmission_emergency.synthetic.html"
            ).read_bytes()
    history = (HISTORY / "api_bip_sdp_history_1998-2011.csv").read_bytes()
    hourly = (HISTORY / "cbp_dbp_cpp_drc_history_2008-2010.derived.csv").read_bytes()

    def cold_tables() -> None:
        sce_locations.tables.cache_clear()
        sce_locations.tables()

    rows = [
        ("location tables, cold load (5 CSVs)", 20, cold_tables),
        ("getEventStore, 7 events", 300, lambda: parse_event_store_conditions(store, NOW)),
        ("commercial status page, 6 events", 300,
         lambda: parse_status_page_conditions(page, NOW)),
        ("resolve District 48 (66 ZIPs)", 2000,
         lambda: sce_locations.resolve("District", ["48"])),
        ("history 1998-2011, 373 events", 20, lambda: history_conditions(history)),
        ("history 2008-2010, 294 events", 20, lambda: history_conditions(hourly)),
    ]
    figures: dict[str, dict[str, float]] = {}
    print(f"{'operation':<42}{'median ms':>12}{'p95 ms':>10}")
    for name, repeat, fn in rows:
        median, p95 = timed(fn, repeat)
        figures[name] = {"median_ms": round(median, 3), "p95_ms": round(p95, 3)}
        print(f"{name:<42}{median:>12.3f}{p95:>10.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
