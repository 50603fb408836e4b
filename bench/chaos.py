"""The long chaos run: every scenario of tests/chaos `--trials` times (20 by default) on the
suite's own Kafka broker and PostgreSQL, decide and deliver (and produce, for its own kill) as
separate processes.

    python bench/chaos.py [--trials N] [--scenario NAME ...]

Prints scenario | trials | expected | lost | duplicates (same webhook-id / other) | time to
recover (median, max: fault over -> last item delivered), then one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from tests.chaos.harness import SCENARIOS, TrialOutcome, run_trial
from tests.chaos.services import ChaosServices


async def main(trials: int, names: list[str], work: Path) -> dict[str, dict[str, object]]:
    services = ChaosServices(work / "services")
    await asyncio.get_running_loop().run_in_executor(None, services.start)
    figures: dict[str, dict[str, object]] = {}
    try:
        for name in names:
            outs: list[TrialOutcome] = []
            for _ in range(trials):
                outs.append(await run_trial(services, work, name))
            recover = [o.recover_s for o in outs if o.recover_s is not None]
            figures[name] = {
                "trials": trials, "expected": sum(o.expected for o in outs),
                "lost": sum(o.lost for o in outs),
                "duplicates_same_id": sum(o.duplicates_same_id for o in outs),
                "duplicates_other": sum(o.duplicates_other for o in outs),
                "unverified": sum(o.unverified for o in outs),
                "recover_median_s": round(statistics.median(recover), 1) if recover else None,
                "recover_max_s": round(max(recover), 1) if recover else None}
            print(f"  {name}: {figures[name]}", file=sys.stderr)
    finally:
        await asyncio.get_running_loop().run_in_executor(None, services.stop)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    # Under /var/tmp: the postgres user must reach the data directory (/root is private).
    work = Path(tempfile.mkdtemp(prefix="capmon-chaos-", dir="/var/tmp"))
    work.chmod(0o755)
    (work / "services").mkdir()
    figures = asyncio.run(main(args.trials, args.scenario or list(SCENARIOS), work))
    width = max(len(name) for name in figures)
    head = (f"{'scenario':{width}} {'trials':>6} {'expected':>8} {'lost':>5} {'dup same':>8} "
            f"{'dup other':>9} {'recover med/max s':>18}")
    print(head)
    print("-" * len(head))
    for name, f in figures.items():
        rec = f"{f['recover_median_s']}/{f['recover_max_s']}"
        print(f"{name:{width}} {f['trials']:>6} {f['expected']:>8} {f['lost']:>5} "
              f"{f['duplicates_same_id']:>8} {f['duplicates_other']:>9} {rec:>18}")
    print(json.dumps({"chaos": figures}))
