"""How fast the replay server answers the producers' poll mix over the whole heat wave.

Walks a ManualClock through the 2022-09 scenario and, at each step, requests what capmon's
producers poll then: every 5 minutes stats.txt, demand.csv and rtm_forecast_7day.csv; every
minute the Flex Alert API and SCE's getLastUpdateTime (getEventStore when it changed); OASIS
DAM and 2DA once a day after 09:10. Prints a table per path and, last, one JSON line.

    PYTHONPATH=. python bench/replay_throughput.py [--days N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from datetime import UTC, timedelta
from pathlib import Path

import aiohttp

from capmon.replay import ReplayServer, load_timeline
from monitor.clock import ManualClock

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "2022-09-heatwave"
FLEX = "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"
SCE = "/m.dr.website/resteasy/services"


async def main(days: float) -> dict[str, float]:
    timeline = load_timeline(SCENARIO)
    clock = ManualClock(timeline.start)
    end = min(timeline.end, timeline.start + timedelta(days=days))
    timings: dict[str, list[float]] = defaultdict(list)
    async with ReplayServer(timeline, clock) as server, aiohttp.ClientSession() as http:
        async def get(name: str, path: str, **params: str) -> bytes:
            t0 = time.perf_counter()
            async with http.get(server.base_url + path, params=params) as resp:
                body = await resp.read()
                assert resp.status == 200, (path, resp.status)
            timings[name].append(time.perf_counter() - t0)
            return body

        started = time.perf_counter()
        last_update = b""
        while clock.now() < end:
            now = clock.now()
            local = now.astimezone(timeline.start.tzinfo)
            await get("flex", FLEX)
            update = await get("sce last update", f"{SCE}/getLastUpdateTime")
            if update != last_update:
                last_update = update
                await get("sce event store", f"{SCE}/getEventStore")
            if local.minute % 5 == 1:
                await get("stats.txt", "/outlook/current/stats.txt", _=str(int(now.timestamp())))
                await get("demand.csv", "/outlook/current/demand.csv")
                await get("rtm_forecast_7day.csv", "/outlook/current/rtm_forecast_7day.csv")
            if (local.hour, local.minute) == (9, 15):
                for market, ahead in (("DAM", 1), ("2DA", 2)):
                    day = (local + timedelta(days=ahead)).replace(hour=0, minute=0)
                    s = day.astimezone(UTC)
                    fmt = "%Y%m%dT%H:%M-0000"
                    await get(f"oasis {market}", "/oasisapi/SingleZip", resultformat="6",
                              queryname="SLD_FCST", version="1", market_run_id=market,
                              startdatetime=s.strftime(fmt),
                              enddatetime=(s + timedelta(days=1)).strftime(fmt))
            clock.advance(60)
        wall = time.perf_counter() - started
    print(f"{'path':<24}{'requests':>10}{'mean ms':>10}{'p99 ms':>10}")
    total = 0
    for name, values in sorted(timings.items()):
        values.sort()
        total += len(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{name:<24}{len(values):>10}{1000 * sum(values) / len(values):>10.2f}"
              f"{1000 * p99:>10.2f}")
    print(f"{'total':<24}{total:>10}   scenario days {days:g}, wall {wall:.1f} s, "
          f"{total / wall:.0f} req/s")
    return {"days": days, "requests": total, "wall_s": round(wall, 2),
            "requests_per_s": round(total / wall, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=12)
    figures = asyncio.run(main(parser.parse_args().days))
    print(json.dumps(figures))
