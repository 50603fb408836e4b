"""How long `capmon demo` takes, and where the time goes.

Runs the whole 2022 heat-wave scenario (or `--days` of it) through the demo on the embedded
bus (or `--kafka BOOTSTRAP`), timing the work of each part: source polls, decide's revisions
and ticks, deliver's attempts, and the time driver's waits. Prints a table and, last, one JSON
line.

    PYTHONPATH=. python bench/demo.py [--days N] [--kafka BOOTSTRAP]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from capmon.demo import DEFAULT_SCENARIO
from capmon.demo.driver import TimeDriver
from capmon.demo.run import DemoOptions, run_demo
from capmon.replay import load_timeline
from consumers.decide.decider import Decider
from consumers.deliver.deliverer import Deliverer
from monitor.logging import configure_logging
from producers.engine import Engine

TIMES: dict[str, list[float]] = defaultdict(list)


def timed(cls: Any, method: str, label: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(cls, method)

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            name = f"{label} {args[0]}" if method == "poll_once" else label
            TIMES[name].append(time.perf_counter() - started)

    setattr(cls, method, wrapper)


async def main(days: float | None, kafka: str | None) -> dict[str, Any]:
    timed(Engine, "poll_once", "poll")
    timed(Decider, "handle", "decide revision")
    timed(Decider, "tick", "decide tick")
    timed(Deliverer, "handle", "deliver attempt")
    timed(TimeDriver, "settle", "driver settle")
    timeline = load_timeline(DEFAULT_SCENARIO)
    until = None if days is None else timeline.start + timedelta(days=days)
    with tempfile.TemporaryDirectory() as out:
        result = await run_demo(DemoOptions(out=Path(out), quiet=True, until=until,
                                            kafka=kafka))
    s = result.summary
    print(f"{'part':<32}{'count':>8}{'total s':>10}{'mean ms':>10}{'p99 ms':>10}")
    for name, values in sorted(TIMES.items(), key=lambda kv: -sum(kv[1])):
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{name:<32}{len(values):>8}{sum(values):>10.2f}"
              f"{1000 * sum(values) / len(values):>10.2f}{1000 * p99:>10.2f}")
    print(f"scenario {s['start'][:10]} .. {s['end'][:10]} on {s['bus']}: {s['wall_seconds']} s "
          f"wall, {s['clock_steps']} clock steps, {s['deliveries']} deliveries "
          f"{s['deliveries_by_channel']}, {sum(s['records_published'].values())} records")
    span = (min(until or timeline.end, timeline.end) - timeline.start).total_seconds() / 86400
    return {"bus": s["bus"], "scenario_days": round(span, 2), "wall_s": s["wall_seconds"],
            "clock_steps": s["clock_steps"], "deliveries": s["deliveries"],
            "records_published": sum(s["records_published"].values()),
            "signatures_failed": s["signatures_failed"], "duplicates": s["duplicates"],
            "decide_revision_mean_ms": round(1000 * sum(TIMES["decide revision"])
                                             / max(1, len(TIMES["decide revision"])), 2),
            "deliver_attempt_mean_ms": round(1000 * sum(TIMES["deliver attempt"])
                                             / max(1, len(TIMES["deliver attempt"])), 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float)
    parser.add_argument("--kafka", metavar="BOOTSTRAP")
    args = parser.parse_args()
    configure_logging("error", "json")
    figures = asyncio.run(main(args.days, args.kafka))
    print(json.dumps(figures))
