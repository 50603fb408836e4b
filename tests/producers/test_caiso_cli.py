"""`capmon parse SOURCE FILE` for the CAISO parsers: JSON lines and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from capmon.cli import main
from capmon.cli.parse import PARSERS
from tests.producers.helpers import CAISO_FIXTURES as F
from tests.producers.helpers import NEW, demand_file, full_day

ROOT = Path(__file__).parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def capmon(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`capmon parse ...` in-process (the subprocess form is tested once below)."""
    def run(*args: str) -> Result:
        code = main(["parse", *args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)
    return run


def test_the_installed_command_line_runs_as_a_process() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "capmon.cli", "parse", "caiso-flex",
         str(F / "flexalert/inactive_2026-04-21.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout == "", out.stderr


def test_every_caiso_parser_is_registered() -> None:
    assert {"caiso-stats", "caiso-demand", "caiso-flex", "caiso-oasis", "caiso-ra-outlook",
            "caiso-notice"} <= set(PARSERS)


@pytest.mark.parametrize(("source", "path", "count", "first_id"), [
    ("caiso-oasis", "oasis/sld_fcst_7da_20250219_20250227.zip", 48,
     "caiso.peak_forecast:CA ISO-TAC:2025-02-19"),
    ("caiso-oasis", "oasis/sld_fcst_20250127_20250129_all_markets.csv", 12,
     "caiso.peak_forecast:CA ISO-TAC:2025-01-27"),
    # Cut at UTC midnights: only the one whole trade date (02-20) prints.
    ("caiso-oasis", "oasis/sld_fcst_7da_utc_20250220_20250222.derived.csv", 6,
     "caiso.peak_forecast:CA ISO-TAC:2025-02-20"),
    ("caiso-ra-outlook", "outlook/history_20260311_rtm_forecast_7day.csv", 8,
     "caiso.ra-margin:2026-03-11"),
    ("caiso-flex", "flexalert/active_example_2021-06-11.json", 3, "caiso.flex:1"),
    ("caiso-flex", "flexalert/inactive_2026-04-21.xml", 0, None),
    ("caiso-notice", "notices/heatwave_2022/33_0906_1726_caiso-eea-3-notice-202202696.eml", 1,
     "caiso.notice:202202696"),
    ("caiso-notice", "notices/legacy_2000_2006/2006-07-24_stage-2-electrical-emergency"
     ".constructed.txt", 1, "caiso.notice:legacy-stage2-200607241300"),
])
def test_parse_prints_json_lines_and_exits_0(capmon: Callable[..., Result], source: str,
                                              path: str, count: int,
                                              first_id: str | None) -> None:
    out = capmon(source, str(F / path), "--fetched-at", "2025-01-27T09:00:00+00:00")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == count
    if first_id:
        assert json.loads(lines[0])["id"] == first_id
        assert set(json.loads(lines[0])) == {"id", "kind", "severity", "status", "window",
                                             "regions", "attributes", "revision",
                                             "observed_at", "source_url"}


@pytest.mark.parametrize("source", ["caiso-stats", "caiso-demand", "caiso-flex", "caiso-oasis",
                                    "caiso-ra-outlook", "caiso-notice"])
def test_unparseable_input_exits_1_with_one_line(capmon: Callable[..., Result], source: str,
                                                 tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"<html><body>502 Bad Gateway</body></html>")
    out = capmon(source, str(bad))
    assert out.returncode == 1 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"capmon parse: {source}: ")


def test_oasis_answer_with_no_whole_day_names_the_hours_it_covers(
        capmon: Callable[..., Result], tmp_path: Path) -> None:
    lines = (F / "oasis/sld_fcst_7da_utc_20250220_20250222.derived.csv").read_text().splitlines()
    cut = tmp_path / "one_utc_day.csv"
    cut.write_text("\n".join([lines[0], *(ln for ln in lines[1:] if ln < "2025-02-21")]) + "\n")
    out = capmon("caiso-oasis", str(cut))
    assert out.returncode == 1 and out.stdout == ""
    assert "7DA 2025-02-20 HE1-16 (16 of 24 hours) x6 areas" in out.stderr


@pytest.mark.parametrize(("cut", "fetched_at", "reason"), [
    # Cut inside the 16:55 reading of a whole day (21015 MW read as 21), at 17:01 PDT.
    (True, "2026-03-12T00:01:00+00:00", "cut mid-line"),
    # The whole file at 20:00 PDT: its 16:55 reading is three hours old.
    (False, "2026-03-12T03:00:00+00:00", "stale"),
])
def test_cut_or_stale_demand_exits_1_never_a_current_reading(
        capmon: Callable[..., Result], tmp_path: Path, cut: bool, fetched_at: str,
        reason: str) -> None:
    whole = demand_file(NEW, full_day(16 * 60 + 55))
    path = tmp_path / "demand.csv"
    path.write_bytes(whole[:whole.index(b"16:55,30017,29017,21") + 20] if cut else whole)
    out = capmon("caiso-demand", str(path), "--fetched-at", fetched_at)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("capmon parse: caiso-demand: demand.csv: ")
    assert reason in out.stderr
    if not cut:  # the same file read at 17:01 PDT is current
        ok = capmon("caiso-demand", str(path), "--fetched-at", "2026-03-12T00:01:00+00:00")
        assert ok.returncode == 0
        assert json.loads(ok.stdout)["attributes"]["current_mw"] == 20000 + 16 * 60 + 55


def test_missing_file_exits_1(capmon: Callable[..., Result]) -> None:
    out = capmon("caiso-stats", "/nonexistent/stats.txt")
    assert out.returncode == 1 and "cannot read" in out.stderr
