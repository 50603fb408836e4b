"""`capmon demo`: replay a recorded grid emergency through every role into local sinks."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capmon.demo import DEFAULT_SCENARIO
from monitor.collector import settle_after_start
from monitor.logging import configure_logging

if TYPE_CHECKING:
    from capmon.demo.run import DemoResult

# What pyproject.toml's `demo` extra installs: the SMTP sink's server and the timeline's tables.
DEMO_EXTRA = ("aiosmtpd", "rich")


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        factor = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a positive number or 'max'") from None
    if factor <= 0:
        raise argparse.ArgumentTypeError("a positive number or 'max'")
    return factor


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="replay the 2022 heat wave through capmon into local sinks",
        description="Serve a scenario's source snapshots locally, run produce, decide and "
                    "deliver against them on a replay clock, deliver into a signature-checking "
                    "webhook receiver, an SMTP server and a Twilio stand-in, print the "
                    "timeline and write OUT/deliveries.jsonl, subscriptions.json and "
                    "summary.json.")
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, metavar="DIR",
                   help="scenario directory with timeline.json (default: %(default)s)")
    p.add_argument("--speed", type=_speed, default=None, metavar="FACTOR|max",
                   help="scenario seconds per real second, or 'max' (default)")
    p.add_argument("--subscriptions", type=Path, metavar="FILE",
                   help="subscribers YAML (default: the scenario's subscriptions.yaml)")
    p.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR",
                   help="output directory (default: %(default)s)")
    p.add_argument("--kafka", metavar="BOOTSTRAP",
                   help="run on this Kafka cluster instead of the embedded bus")
    p.add_argument("--quiet", action="store_true", help="no timeline, only the summary line")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        from capmon.demo.run import DemoOptions, run_demo
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in DEMO_EXTRA:
            raise
        print(f"capmon demo: needs the demo extra (no module {exc.name!r}): "
              "pip install 'capmon[demo]'", file=sys.stderr)
        return 2
    configure_logging("error", "auto")
    settle_after_start()  # as `capmon run` does: the demo is a capmon process too
    signals: list[signal.Signals] = []
    interrupt = asyncio.Event()
    demo = run_demo(DemoOptions(
        scenario=args.scenario, out=args.out, speed=args.speed,
        subscriptions=args.subscriptions, kafka=args.kafka, quiet=args.quiet,
        interrupt=interrupt))
    result = asyncio.run(_until_signalled(demo, interrupt, signals))
    s = result.summary
    stopped = f"interrupted at {s['end']}: " if s["interrupted"] else ""
    print(f"capmon demo: {stopped}{s['deliveries']} deliveries, {s['signatures_failed']} bad "
          f"signatures, {s['duplicates']} duplicates in {s['wall_seconds']} s; "
          f"wrote {args.out}/deliveries.jsonl, subscriptions.json, summary.json")
    if signals:  # the shell's convention for "ended by this signal"
        return 128 + signals[0].value
    return 0 if s["signatures_failed"] == 0 and s["duplicates"] == 0 else 1


async def _until_signalled(demo: Coroutine[Any, Any, DemoResult], interrupt: asyncio.Event,
                           signals: list[signal.Signals]) -> DemoResult:
    """The demo, which SIGINT or SIGTERM ends at the present scenario time."""
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        signals.append(sig)
        interrupt.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await demo
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
