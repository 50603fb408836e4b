"""`caiso_common.csv_table` splits unquoted text itself: it must read exactly what csv.reader
reads, rows, blanks, padding and errors alike. The oracle is the csv.reader loop that
`csv_rows` used before the fast path."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from producers.caiso_common import csv_rows, csv_table, number
from tests.producers.helpers import CAISO_FIXTURES as F


def oracle(text: str, required: tuple[str, ...]) -> list[dict[str, str]] | str:
    reader = csv.reader(io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n")))
    try:
        header = next(reader)
    except StopIteration:
        return "empty"
    except csv.Error:
        return "unreadable"
    names = [h.strip().strip("\r") for h in header]
    if any(r not in names for r in required):
        return "header"
    out = []
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < len(names):
                row = row + [""] * (len(names) - len(row))
            out.append(dict(zip(names, map(str.strip, row), strict=False)))
    except csv.Error:
        return "unreadable"
    return out


def ours(text: str, required: tuple[str, ...]) -> list[dict[str, str]] | str:
    try:
        return list(csv_rows(text, "test", required))
    except ParseError as exc:
        message = str(exc)
        return ("empty" if "empty file" in message else "header" if "header lacks" in message
                else "unreadable")


CELL = st.text(alphabet="ab 1,\t\r\n", max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(CELL, max_size=30).map("".join), st.booleans())
def test_unquoted_text_reads_as_csv_reader_reads_it(body: str, with_header: bool) -> None:
    text = ("a,b,1\n" if with_header else "") + body
    for required in ((), ("a",), ("b", "1")):
        assert ours(text, required) == oracle(text, required)


@settings(max_examples=400, deadline=None)
@given(st.lists(CELL, max_size=30).map("".join), st.sampled_from(['', '"']))
def test_where_keeps_the_rows_csv_reader_would_keep(body: str, quote: str) -> None:
    text = f"a,b,1\n{quote}{body}"
    try:
        kept = [dict(zip(("a", "b", "1"), map(str.strip, row), strict=False))
                for row in csv_table(text, "test", (), {"b": {"1", "a b", ""}})[1]]
    except ParseError:
        kept = "unreadable"  # type: ignore[assignment]
    expected = oracle(text, ())
    if isinstance(expected, list):
        expected = [row for row in expected if row.get("b", "") in {"1", "a b", ""}]
    assert kept == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet='ab ,"\r\n', max_size=8), max_size=20).map("".join),
       st.booleans())
def test_quoted_text_goes_through_csv_reader(body: str, with_header: bool) -> None:
    text = ('a,b\n' if with_header else '"') + body
    for required in ((), ("a",)):
        assert ours(text, required) == oracle(text, required)


@pytest.mark.parametrize("path", [
    "oasis/sld_fcst_20250127_20250129_all_markets.csv",
    "outlook/history_20260311_rtm_forecast_7day.csv",
])
def test_real_files_read_as_csv_reader_reads_them(path: str) -> None:
    text = (F / path).read_text()
    assert ours(text, ("Time",) if "outlook" in path else ()) == oracle(
        text, ("Time",) if "outlook" in path else ())


def test_a_field_over_csvs_limit_is_an_error_on_both_paths() -> None:
    long = "x" * (csv.field_size_limit() + 1)
    for text in (f"a,b\n1,{long}\n", f'a,b\n"1",{long}\n'):
        with pytest.raises(ParseError, match="field larger than field limit"):
            list(csv_table(text, "test", ("a",))[1])


@pytest.mark.parametrize(("cell", "value"), [
    ("38295", 38295.0), ("0042", 42.0), ("21450.92", 21450.92), (".5", 0.5), ("7.", 7.0),
    (" 12 ", 12.0), ("1,234.5", 1234.5), ("-3", -3.0), ("", None), ("  ", None)])
def test_number_fast_and_regular_paths_agree(cell: str, value: float | None) -> None:
    assert number(cell, "MW") == value


@pytest.mark.parametrize("cell", ["\u0661\u0662", "1_000", "nan", "inf", "9" * 400, "12abc",
                                  ".", "1.2.3", "1e999"])
def test_number_rejects_what_the_regular_path_rejects(cell: str) -> None:
    with pytest.raises(ParseError):
        number(cell, "MW")
