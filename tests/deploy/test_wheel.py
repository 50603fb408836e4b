"""The production install path: the wheel `make dist` builds holds everything capmon needs at
run time, `capmon demo` included, and works from a directory that is not a checkout."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_and_unpack(tmp: Path) -> Path:
    """`make dist`'s wheel (built here without fetching the build backend: hatchling is a
    development dependency), installed without its dependencies into `tmp/site`."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                    "--wheel-dir", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = (tmp / "dist").glob("capmon-*-py3-none-any.whl")
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return site


def wheel_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    return {**env, "PYTHONPATH": str(site), "COLUMNS": "200"}


def python(site: Path, cwd: Path, *argv: str) -> str:
    run = subprocess.run([sys.executable, *argv], cwd=cwd, env=wheel_env(site),
                         capture_output=True, text=True, check=True, timeout=60)
    return run.stdout.strip()


async def test_capmon_demo_runs_from_the_wheel(tmp_path: Path) -> None:
    site = build_and_unpack(tmp_path)
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    where = python(site, elsewhere, "-c",
                   "import capmon.demo as d; print(d.DEFAULT_SCENARIO)")
    assert Path(where).is_relative_to(site)  # package data, not a checkout
    assert python(site, elsewhere, "-m", "capmon.cli", "--version") == "capmon 0.1.0"

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "demo", "--speed", "3600", cwd=elsewhere,
        env=wheel_env(site), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(120):
            while b"RMO" not in (line := await proc.stdout.readline()):
                assert line, (await proc.stderr.read()).decode() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 143, err.decode()
    summary = json.loads((elsewhere / "demo-out" / "summary.json").read_text())
    assert summary["deliveries"] > 0 and summary["signatures_failed"] == 0
