"""`capmon demo` stopped by SIGTERM or Ctrl-C ends at the present with its summary, and never
leaves the previous run's files beside a new store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_an_interrupted_demo_says_what_it_did(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    for name in ("deliveries.jsonl", "subscriptions.json", "summary.json"):
        (out / name).write_text("left by an earlier run\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "demo", "--out", str(out), "--speed", "3600",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")},
             "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    assert proc.stdout is not None
    try:
        # The replay runs once the status page is announced; the first message of 8/29
        # (the RMOs of 11:35) follows within seconds at an hour per second.
        async with asyncio.timeout(120):
            while b"RMO" not in (line := await proc.stdout.readline()):
                assert line, "capmon demo ended before it delivered anything"
        # Stale files are gone as soon as the new store exists.
        assert not (out / "summary.json").exists()
    finally:
        proc.send_signal(sig)
        rest, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 128 + sig.value, err.decode()
    tail = rest.decode().strip().splitlines()[-1]
    assert tail.startswith("capmon demo: interrupted at 2022-08-29T"), tail
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["end"] < "2022-08-31"
    deliveries = (out / "deliveries.jsonl").read_text().splitlines()
    assert len(deliveries) == summary["deliveries"] > 0
    assert "left by an earlier run" not in (out / "subscriptions.json").read_text()
