"""A body cut in transit (mid-number, mid-line, at a line boundary) is refused or explicitly
partial: never a current, peak or margin value that differs from the whole file's, and never
silently fewer days. Each parser is run on its real fixture (demand.csv: a constructed day,
none having been captured) cut at offsets found in the file itself."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import pytest

from monitor.errors import ParseError
from monitor.events import Condition
from producers import caiso_demand, caiso_oasis, caiso_ra
from producers.caiso_common import PACIFIC
from producers.sce_history import parse_history
from tests.producers.helpers import CAISO_FIXTURES as F
from tests.producers.helpers import NEW, OLD, demand_file, full_day

SCE = F.parent / "sce" / "history"


def pt(*args: int) -> datetime:
    return datetime(*args, tzinfo=PACIFIC).astimezone(UTC)  # type: ignore[misc]


def line_starts(raw: bytes) -> list[int]:
    return [0, *(m.end() for m in re.finditer(rb"\n", raw))]


def cuts(raw: bytes, lines: Sequence[int]) -> list[tuple[str, int]]:
    """For each line index (0 = the header): the offset of its start (a line boundary), of its
    middle, and inside its last number of two digits or more; and the whole body but its
    final line break."""
    starts = line_starts(raw)
    out = []
    for k in lines:
        start, end = starts[k], starts[k + 1] - 1
        line = raw[start:end]
        out.append((f"line {k} boundary", start))
        out.append((f"line {k} mid-line", start + len(line) // 2))
        numbers = list(re.finditer(rb"\d{2,}", line))
        if numbers:
            out.append((f"line {k} mid-number", start + numbers[-1].start() + 1))
    out.append(("final line break", len(raw) - 1))
    return out


def spread(raw: bytes) -> list[int]:
    """The first rows, one in the middle and the last two."""
    n = len(line_starts(raw)) - 2  # the index of the last line
    return [1, 2, n // 2, n - 1, n]


def refused_or_same(parse: Callable[[bytes], list[Condition]], cut: bytes,
                    whole: list[Condition]) -> list[Condition] | None:
    """None when the cut body is refused; else what it says, every value as the whole's."""
    try:
        out = parse(cut)
    except ParseError:
        return None
    expected = {c.id: (c.status, c.attributes) for c in whole}
    for c in out:
        assert (c.status, c.attributes) == expected[c.id], c.id
    return out


# -- demand.csv -------------------------------------------------------------------------------

CURRENT = demand_file(NEW, full_day(17 * 60 + 55))  # current/ at 18:01
AT = pt(2026, 3, 11, 18, 1)
# A finished day whose closing 00:00 row is its last line, its reading (21440 MW) last of all.
FINISHED = (OLD + "".join(r.rsplit(",", 1)[0] + "\n" for r in full_day(24 * 60))).encode()
DAY = date(2026, 3, 11)


@pytest.mark.parametrize(("what", "offset"), cuts(CURRENT, spread(CURRENT)))
def test_cut_current_demand_is_refused(what: str, offset: int) -> None:
    whole = caiso_demand.parse(CURRENT, AT)
    out = refused_or_same(lambda raw: caiso_demand.parse(raw, AT), CURRENT[:offset], whole)
    # Only the trailing blank row can go without changing what the file says.
    assert out is None or offset == CURRENT.rindex(b",,,,\n")


@pytest.mark.parametrize(("what", "offset"), cuts(FINISHED, spread(FINISHED)))
def test_cut_finished_demand_day_is_refused(what: str, offset: int) -> None:
    whole = caiso_demand.parse(FINISHED, pt(2026, 3, 12, 9), day=DAY)
    assert whole[0].attributes.current_mw == 21440  # type: ignore[attr-defined]
    assert refused_or_same(lambda raw: caiso_demand.parse(raw, pt(2026, 3, 12, 9), day=DAY),
                           FINISHED[:offset], whole) is None


@pytest.mark.parametrize("last", ["00:00,30024,29024,21", "00:00,30024,29024,0",
                                  "00:00,30024,29024,21440", "00:00,30024,29", "00:00,,,21440"])
def test_a_last_row_that_lost_digits_or_cells_is_refused(last: str) -> None:
    """A cut that still ends with a line break (a proxy's repaired body): the closing row is
    compared with the row before it, ~21,435 MW and a day-ahead forecast."""
    rows = [r.rsplit(",", 1)[0] for r in full_day(24 * 60)][:-1]
    raw = (OLD + "".join(r + "\n" for r in [*rows, last])).encode()
    if last == "00:00,30024,29024,21440":
        [c] = caiso_demand.parse(raw, pt(2026, 3, 12, 9), day=DAY)
        assert c.attributes.current_mw == 21440  # type: ignore[attr-defined]
        return
    with pytest.raises(ParseError) as info:
        caiso_demand.parse(raw, pt(2026, 3, 12, 9), day=DAY)
    assert info.value.reason == "truncated"


# -- OASIS SLD_FCST ---------------------------------------------------------------------------

OASIS_CSV = (F / "oasis" / "sld_fcst_20250127_20250129_all_markets.csv").read_bytes()
OASIS_AT = pt(2025, 1, 27, 1)


def zipped(csv: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("20250127_20250129_SLD_FCST_DAM_20250127_09_12_13_v1.csv", csv)
    return buf.getvalue()


def oasis_refused_or_partial(whole_raw: bytes, cut: bytes) -> None:
    whole = {c.id: c.attributes for c in caiso_oasis.parse(whole_raw, OASIS_AT)}
    try:
        answer = caiso_oasis.forecasts(cut, OASIS_AT)
    except ParseError:
        return
    partial = {(s.market, s.area, s.trade_date) for s in answer.partial}
    said = {c.id: c.attributes for c in answer.conditions}
    dates_left = {s.trade_date for s in answer.partial} | {
        a.trade_date for a in said.values()}  # type: ignore[attr-defined]
    for cid, full in whole.items():
        key = (full.market_run, full.area, full.trade_date)  # type: ignore[attr-defined]
        if said.get(cid) == full:
            continue
        if full.trade_date not in dates_left:  # type: ignore[attr-defined]
            continue  # the cut took every row of the date: no peak at all, not a wrong one
        # The freshest vintage lost hours: it is named partial, and what is left of the day
        # (a whole older vintage, or nothing) says so in its market.
        assert key in partial, cid
        assert cid not in said or said[cid].market_run != full.market_run  # type: ignore[attr-defined]


@pytest.mark.parametrize(("what", "offset"), cuts(OASIS_CSV, spread(OASIS_CSV)))
def test_cut_oasis_csv_is_refused_or_partial(what: str, offset: int) -> None:
    oasis_refused_or_partial(OASIS_CSV, OASIS_CSV[:offset])


@pytest.mark.parametrize(("what", "offset"), cuts(OASIS_CSV, spread(OASIS_CSV)))
def test_zipped_cut_oasis_csv_is_refused_or_partial(what: str, offset: int) -> None:
    oasis_refused_or_partial(zipped(OASIS_CSV), zipped(OASIS_CSV[:offset]))


def test_cut_oasis_row_is_refused_not_a_lower_peak() -> None:
    """The CA ISO-TAC DAM HE19 row (the day's 27,945.29 MW peak) last, cut inside its MW."""
    lines = OASIS_CSV.decode().splitlines(keepends=True)
    peak = next(i for i, line in enumerate(lines)
                if ",19,0,DAM,CA ISO-TAC," in line and "27945.29" in line)
    body = "".join([*lines[:peak], *lines[peak + 1:], lines[peak]])
    assert caiso_oasis.parse(body.encode(), OASIS_AT) == caiso_oasis.parse(OASIS_CSV, OASIS_AT)
    cut = body[:body.rindex("27945.29") + 4].encode()
    with pytest.raises(ParseError) as info:
        caiso_oasis.parse(cut, OASIS_AT)
    assert info.value.reason == "truncated"


def test_series_a_cut_took_whole_is_named_partial() -> None:
    """Rows are unsorted: without every SDGE-TAC DAM row the file still peaks the other areas'
    DAM on 01-27, and SDGE-TAC's day is named partial (no hour), its peak left to the 2DA."""
    lines = OASIS_CSV.decode().splitlines(keepends=True)
    body = "".join(line for line in lines if ",DAM,SDGE-TAC," not in line).encode()
    answer = caiso_oasis.forecasts(body, OASIS_AT)
    [gone] = [s for s in answer.partial if s.area == "SDGE-TAC"]
    assert (gone.market, gone.trade_date, gone.values) == ("DAM", date(2025, 1, 27), ())
    assert gone.describe() == "DAM 2025-01-27 no hour (0 of 24 hours)"
    sdge = {c.id: c.attributes for c in answer.conditions}[
        "caiso.peak_forecast:SDGE-TAC:2025-01-27"]
    assert sdge.market_run == "2DA"  # type: ignore[attr-defined]


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_cut_oasis_zip_is_refused(fraction: float) -> None:
    raw = (F / "oasis" / "sld_fcst_7da_20250219_20250227.zip").read_bytes()
    with pytest.raises(ParseError):
        caiso_oasis.parse(raw[:int(len(raw) * fraction)], OASIS_AT)


# -- rtm_forecast_7day.csv --------------------------------------------------------------------

RA = (F / "outlook" / "history_20260311_rtm_forecast_7day.csv").read_bytes()
RA_AT = pt(2026, 3, 11, 9)


def ra_lines() -> list[int]:
    """`spread`, and the first row after a midnight mid-file: a cut there loses whole days."""
    starts = line_starts(RA)
    midnight = next(k for k, s in enumerate(starts) if RA.startswith(b"03/15/2026 00:00", s))
    return [*spread(RA), midnight + 1]


@pytest.mark.parametrize(("what", "offset"), cuts(RA, ra_lines()))
def test_cut_ra_outlook_is_refused(what: str, offset: int) -> None:
    whole = caiso_ra.parse(RA, RA_AT)
    assert len(whole) == caiso_ra.DAYS
    assert refused_or_same(lambda raw: caiso_ra.parse(raw, RA_AT), RA[:offset], whole) is None


def test_ra_outlook_missing_a_middle_day_is_refused() -> None:
    text = RA.decode()
    kept = "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith("03/14/2026"))
    with pytest.raises(ParseError, match="not 8 in a row"):
        caiso_ra.parse(kept.encode(), RA_AT)


# -- SCE history ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["api_bip_sdp_history_1998-2011.csv",
                                  "cbp_dbp_cpp_drc_history_2008-2010.derived.csv"])
def test_cut_sce_history_is_refused_or_a_prefix(name: str) -> None:
    raw = (SCE / name).read_bytes()
    whole = parse_history(raw)
    starts = line_starts(raw)
    for what, offset in cuts(raw, spread(raw)):
        try:
            events = parse_history(raw[:offset])
        except ParseError as exc:
            assert "boundary" in what or exc.reason == "truncated", what
            continue
        # A cut between rows leaves whole rows: nothing in the file counts them
        # (sources-sce.md); nor does one that takes only the `\n` of the last `\r\n`.
        assert ("boundary" in what and offset in starts) or raw[offset:] == b"\n", what
        assert events == whole[:len(events)]
