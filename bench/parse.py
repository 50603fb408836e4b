"""Benchmark of the CAISO parsers and of one poll cycle.

    python bench/parse.py [--repeat N]

1. Parse time per file for every parser (best of N runs, milliseconds).
2. The same files through the `gridstatus` library where it can parse them (its OASIS and
   Today's Outlook CSV processing), as a ratio gridstatus / capmon (above 1: capmon is
   faster). The two are timed in alternating rounds (`--rounds`), each side's best of
   `--repeat` runs per round, so a busy spell on the machine does not land on one side only.
   gridstatus reads every TAC area of an OASIS file, so capmon is also timed with
   `areas=None` (every area) beside its default (the six CAISO areas). gridstatus is not a
   capmon dependency: it is looked up in this interpreter, else in the interpreter named by
   CAPMON_BENCH_GRIDSTATUS_PYTHON (default /work/bench-venv/bin/python); without it the
   section says "gridstatus not installed".
3. Peak memory (tracemalloc) of one poll cycle over all CAISO sources, against a local aiohttp
   server that serves the fixtures on CAISO's URLs.
4. CPU seconds per hour of polling at the real cadences, estimated from measured cycles.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from monitor.bus import MemoryBus  # noqa: E402
from monitor.clock import ManualClock  # noqa: E402
from monitor.logging import configure_logging  # noqa: E402
from producers import (  # noqa: E402
    caiso_demand,
    caiso_flex,
    caiso_notices,
    caiso_oasis,
    caiso_ra,
    caiso_stats,
)
from producers.caiso_common import PACIFIC  # noqa: E402
from producers.caiso_demand import DemandSource  # noqa: E402
from producers.caiso_flex import FlexSource  # noqa: E402
from producers.caiso_oasis import OasisSource  # noqa: E402
from producers.caiso_ra import RaOutlookSource  # noqa: E402
from producers.caiso_stats import StatsSource  # noqa: E402
from producers.engine import Engine, PollOutcome  # noqa: E402
from producers.http import HttpFetcher  # noqa: E402

F = ROOT / "tests" / "fixtures" / "caiso"
FETCHED = datetime(2026, 3, 11, 20, 0, tzinfo=UTC)

# Synthetic full-day bodies where no real capture exists. Both must read as current (a cut or
# stale file is a ParseError; docs/sources-caiso.md): each is parsed at a fetch time just after
# its latest reading.
STATS = (b'{"slotDate":"9/6/2022 17:25","gridstatus":["Energy Emergency Alert (EEA) 3"],'
         b'"Current_reserve":"1,950","Required_reserve":2600,"CurrentSystemDemand":"51,812",'
         b'"TodaysPeakDemand":52061,"TodaysPeakDemandTS":"202209061657",'
         b'"todayForecastPeakDemand":"51,276","tomorrowsForecastPeakDemand":50123.4}')
STATS_FETCHED = datetime(2022, 9, 7, 0, 26, tzinfo=UTC)  # 17:26 PDT
DEMAND_FETCHED = datetime(2026, 3, 12, 0, 1, tzinfo=UTC)  # 17:01 PDT, the 16:55 reading


def demand_day(known_until: int = 16 * 60 + 55) -> bytes:
    """`known_until`: the minute of the day of the latest current demand."""
    lines = ["Time,Day ahead forecast,Hour ahead forecast,Current demand,Demand response"]
    for h in range(24):
        for m in range(0, 60, 5):
            cur = str(30000 + h * 100 + m) if h * 60 + m <= known_until else ""
            lines.append(f"{h:02d}:{m:02d},{31000 + h * 90},{30500 + h * 95},{cur},")
    lines.append("00:00,30000,30000,,")
    return ("\n".join(lines) + "\n").encode()


def oasis_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("20250127_20250129_SLD_FCST_DAM_20250127_09_12_13_v1.csv",
                    (F / "oasis" / "sld_fcst_20250127_20250129_all_markets.csv").read_bytes())
    return buf.getvalue()


def files() -> list[tuple[str, str, Callable[..., object], bytes, datetime]]:
    heat = sorted((F / "notices" / "heatwave_2022").glob("*.eml"))
    return [
        ("caiso-stats", "stats.txt (synthetic)", caiso_stats.parse, STATS, STATS_FETCHED),
        ("caiso-demand", "demand.csv full day (synthetic)", caiso_demand.parse, demand_day(),
         DEMAND_FETCHED),
        ("caiso-flex", "active_example_2021-06-11.json", caiso_flex.parse,
         (F / "flexalert" / "active_example_2021-06-11.json").read_bytes(), FETCHED),
        ("caiso-flex", "inactive_2026-04-21.xml", caiso_flex.parse,
         (F / "flexalert" / "inactive_2026-04-21.xml").read_bytes(), FETCHED),
        ("caiso-oasis", "sld_fcst_..._all_markets.csv", caiso_oasis.parse,
         (F / "oasis" / "sld_fcst_20250127_20250129_all_markets.csv").read_bytes(), FETCHED),
        ("caiso-oasis", "sld_fcst_7da_20250219_20250227.zip", caiso_oasis.parse,
         (F / "oasis" / "sld_fcst_7da_20250219_20250227.zip").read_bytes(), FETCHED),
        ("caiso-ra-outlook", "history_20260311_rtm_forecast_7day.csv", caiso_ra.parse,
         (F / "outlook" / "history_20260311_rtm_forecast_7day.csv").read_bytes(), FETCHED),
        ("caiso-notice", "33_..._eea-3-notice-202202696.eml", caiso_notices.parse,
         heat[32].read_bytes(), FETCHED),
        ("caiso-notice", "39_..._superseding eea2.eml", caiso_notices.parse,
         heat[38].read_bytes(), FETCHED),
    ]


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000


# -- gridstatus ------------------------------------------------------------------------------

# Runs inside whichever interpreter has gridstatus; prints {"label": ms or null}.
GRIDSTATUS_SCRIPT = r"""
import io, json, sys, time, zipfile
import pandas as pd
import requests
import gridstatus
from gridstatus import caiso as gc
repeat = int(sys.argv[1]); paths = json.loads(sys.argv[2])
def best(fn):
    out = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return min(out) * 1000
class Served:
    # gridstatus fuses fetching with parsing (requests.get inside): hand it the saved body.
    def __init__(self, body): self.status_code = 200; self.content = body; self.headers = {
        "Content-Disposition": "inline; filename=x_SLD_FCST_v1.zip;"}
def as_zip(raw, path):
    if path.endswith(".zip"):
        return raw
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x_SLD_FCST_DAM_v1.csv", raw)
    return buf.getvalue()
iso = gc.CAISO()
start = pd.Timestamp("2025-01-27", tz="US/Pacific")
config = {"path": "SingleZip", "resultformat": 6, "queryname": "SLD_FCST", "version": 1}
res = {"version": gridstatus.__version__}
for label, path in paths.items():
    raw = open(path, "rb").read()
    if label.startswith("caiso-oasis"):
        body = as_zip(raw, path)
        requests.get = lambda *a, **k: Served(body)
        res[label] = best(lambda: iso._get_oasis(dict(config), start, sleep=0))
    elif label.startswith("caiso-ra-outlook"):
        day = pd.Timestamp("2026-03-11", tz="US/Pacific")
        res[label] = best(lambda: iso._parse_rtm_forecast_7day_csv(
            pd.read_csv(io.BytesIO(raw)), day))
print(json.dumps(res))
"""


# The files gridstatus parses too, by their label in the parse table.
COMPARED = {
    "caiso-oasis:sld_fcst_..._all_markets.csv":
        F / "oasis" / "sld_fcst_20250127_20250129_all_markets.csv",
    "caiso-oasis:sld_fcst_7da_20250219_20250227.zip":
        F / "oasis" / "sld_fcst_7da_20250219_20250227.zip",
    "caiso-ra-outlook:history_20260311_rtm_forecast_7day.csv":
        F / "outlook" / "history_20260311_rtm_forecast_7day.csv",
}
EVERY_AREA = ", every TAC area"


def gridstatus_times(repeat: int) -> dict[str, object] | None:
    paths = {label: str(path) for label, path in COMPARED.items()}
    candidates = [sys.executable,
                  os.environ.get("CAPMON_BENCH_GRIDSTATUS_PYTHON", "/work/bench-venv/bin/python")]
    for python in candidates:
        if not Path(python).exists():
            continue
        proc = subprocess.run([python, "-c", GRIDSTATUS_SCRIPT, str(repeat), json.dumps(paths)],
                              capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
            result["python"] = python
            return result
    return None


def capmon_parsers() -> dict[str, Callable[[], object]]:
    """What capmon does with each compared file: its default parse, and for OASIS also the
    parse of every TAC area, which is the work gridstatus does."""
    out: dict[str, Callable[[], object]] = {}
    for label, path in COMPARED.items():
        raw = path.read_bytes()
        if label.startswith("caiso-oasis"):
            out[label] = lambda raw=raw: caiso_oasis.parse(raw, FETCHED)
            out[label + EVERY_AREA] = lambda raw=raw: caiso_oasis.parse(raw, FETCHED, areas=None)
        else:
            out[label] = lambda raw=raw: caiso_ra.parse(raw, FETCHED)
    return out


def compare(repeat: int, rounds: int) -> dict[str, object] | None:
    """Best times of both sides over alternating rounds, and the ratios."""
    parsers = capmon_parsers()
    theirs: dict[str, float] = {}
    ours: dict[str, float] = {}
    version = python = None
    for _ in range(rounds):
        gs = gridstatus_times(repeat)
        if gs is None:
            return None
        version, python = gs["version"], gs["python"]
        for label in COMPARED:
            ms = gs[label]
            assert isinstance(ms, float)
            theirs[label] = min(theirs.get(label, ms), ms)
        for label, fn in parsers.items():
            ms = best_ms(fn, repeat)
            ours[label] = min(ours.get(label, ms), ms)
    ratios = {label: round(theirs[label.removesuffix(EVERY_AREA)] / ms, 2)
              for label, ms in ours.items()}
    return {"version": version, "python": python, "gridstatus_ms": theirs, "capmon_ms": ours,
            "ratio": ratios}


# -- one poll cycle over every CAISO source ---------------------------------------------------

async def poll_cycles(cycles: int) -> dict[str, object]:
    bodies = {
        # Current on the cycle's clock (09:30 PST): the 09:25 slot and reading.
        "/outlook/current/stats.txt": STATS.replace(b"9/6/2022 17:25", b"1/27/2025 09:25"),
        "/outlook/current/demand.csv": demand_day(9 * 60 + 25),
        "/outlook/current/rtm_forecast_7day.csv":
            (F / "outlook" / "history_20260311_rtm_forecast_7day.csv").read_bytes(),
        "/flex": (F / "flexalert" / "active_example_2021-06-11.json").read_bytes(),
        "/oasisapi/SingleZip": oasis_zip(),
    }

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=bodies[request.path])

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    clock = ManualClock(datetime(2025, 1, 27, 9, 30, tzinfo=PACIFIC), auto_advance=True)
    sources = [StatsSource(f"{base}/outlook"), DemandSource(f"{base}/outlook"),
               FlexSource(f"{base}/flex"), RaOutlookSource(f"{base}/outlook")]
    oasis = OasisSource(f"{base}/oasisapi/SingleZip")
    cpu: dict[str, float] = {}
    try:
        async with HttpFetcher(clock, user_agent="capmon-bench", timeout_s=10,
                               max_response_bytes=20_000_000) as fetcher:
            engine = Engine([*sources, oasis], fetcher, MemoryBus(), clock,
                            rng=random.Random(1))
            tracemalloc.start()
            for s in [*sources, oasis]:
                # A cycle that measures a refusal measures the wrong thing.
                outcome = await engine.poll_once(s.name)
                assert outcome is PollOutcome.OK, (s.name, outcome)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            for s in sources:
                t = time.process_time()
                for _ in range(cycles):
                    await engine.poll_once(s.name)
                cpu[s.name] = (time.process_time() - t) / cycles
            # A full OASIS fetch (three requests, 5 s apart on the clock) and a no-op poll.
            fresh = [OasisSource(f"{base}/oasisapi/SingleZip") for _ in range(cycles)]
            t = time.process_time()
            for o in fresh:
                await o.poll(fetcher, clock.now())
            cpu["caiso-oasis-fetch"] = (time.process_time() - t) / cycles
            # After noon with today's publication fetched, a poll is a no-op.
            clock.set(datetime(2025, 1, 27, 12, 30, tzinfo=PACIFIC))
            t = time.process_time()
            for _ in range(cycles):
                await engine.poll_once("caiso-oasis")
            cpu["caiso-oasis-idle"] = (time.process_time() - t) / cycles
    finally:
        await runner.cleanup()
    # Real cadences: 12/h for stats and demand, 60/h flex, 4/h RA; OASIS 6 polls/h of which
    # on average well under one fetches (three fetches a day, plus retries until noon).
    per_hour = (12 * cpu["caiso-stats"] + 12 * cpu["caiso-demand"] + 60 * cpu["caiso-flex"]
                + 4 * cpu["caiso-ra-outlook"] + 6 * cpu["caiso-oasis-idle"]
                + (6 / 24) * cpu["caiso-oasis-fetch"])
    return {"peak_bytes": peak, "cpu_s_per_poll": cpu, "cpu_s_per_hour": per_hour}


def main() -> None:
    configure_logging("error", "json", stream=sys.stderr)
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    print(f"{'parser':18} {'file':42} {'bytes':>9} {'ms':>9} {'conditions':>10}")
    parse_ms: dict[str, float] = {}
    for name, label, fn, raw, at in files():
        out = fn(raw, at)
        ms = best_ms(lambda fn=fn, raw=raw, at=at: fn(raw, at), args.repeat)
        parse_ms[f"{name}:{label}"] = round(ms, 3)
        print(f"{name:18} {label:42} {len(raw):9} {ms:9.3f} {len(out):10}")  # type: ignore[arg-type]

    print()
    gs = compare(args.repeat, args.rounds)
    if gs is None:
        print("gridstatus not installed (set CAPMON_BENCH_GRIDSTATUS_PYTHON to an interpreter "
              "that has it)")
    else:
        print(f"gridstatus {gs['version']} ({gs['python']}), best of {args.repeat} runs in "
              f"{args.rounds} alternating rounds; ratio gridstatus/capmon (above 1: capmon faster)")
        print(f"  {'file':72} {'gridstatus':>10} {'capmon':>9} {'ratio':>6}")
        for label, ms in gs["capmon_ms"].items():  # type: ignore[attr-defined]
            theirs = gs["gridstatus_ms"][label.removesuffix(EVERY_AREA)]  # type: ignore[index]
            print(f"  {label:72} {theirs:10.3f} {ms:9.3f} {gs['ratio'][label]:>5}x")  # type: ignore[index]

    print()
    cycle = asyncio.run(poll_cycles(args.cycles))
    print(f"peak memory of one poll cycle over all CAISO sources: "
          f"{cycle['peak_bytes'] / 1e6:.2f} MB (tracemalloc)")
    for name, s in cycle["cpu_s_per_poll"].items():  # type: ignore[attr-defined]
        print(f"  cpu per poll {name:20} {s * 1000:8.2f} ms")
    print(f"estimated CPU at real cadences: {cycle['cpu_s_per_hour']:.2f} s per hour")
    print(json.dumps({
        "parse_ms": parse_ms,
        "gridstatus": None if gs is None else {k: v for k, v in gs.items() if k != "python"},
        "poll_cycle_peak_bytes": cycle["peak_bytes"],
        "cpu_s_per_poll": {k: round(v, 5) for k, v in cycle["cpu_s_per_poll"].items()},  # type: ignore[attr-defined]
        "cpu_s_per_hour": round(cycle["cpu_s_per_hour"], 3),  # type: ignore[arg-type]
    }))


if __name__ == "__main__":
    main()
