"""Property-based fuzzing of every CAISO parser: only ParseError may escape.

Inputs are random bytes, mutations of the real fixtures (truncation at any point, byte flips,
splices) and oversized inputs; whatever comes in, a parser either returns valid conditions or
raises ParseError with a one-line reason. It never raises anything else and never hangs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.events import Condition
from producers import caiso_demand, caiso_flex, caiso_notices, caiso_oasis, caiso_ra, caiso_stats
from tests.producers.helpers import CAISO_FIXTURES as F
from tests.producers.helpers import NEW, demand_file, full_day

FETCHED = datetime(2026, 3, 11, 20, 0, tzinfo=UTC)
Parser = Callable[[bytes, datetime], list[Condition]]

SEEDS: dict[str, tuple[Parser, list[bytes]]] = {
    "caiso-stats": (caiso_stats.parse, [
        b'{"slotDate":"3/11/2026 12:55","gridstatus":["Restricted Maintenance Operations"],'
        b'"Current_reserve":"3,560","tomorrowsForecastPeakDemand":48321.5}']),
    # A whole day read at 13:00 PDT, its 12:55 reading the latest (a cut or stale seed would
    # only ever be refused).
    "caiso-demand": (caiso_demand.parse, [demand_file(NEW, full_day(12 * 60 + 55))]),
    "caiso-flex": (caiso_flex.parse, [p.read_bytes() for p in (F / "flexalert").iterdir()]),
    "caiso-oasis": (caiso_oasis.parse, [
        (F / "oasis" / "sld_fcst_20250127_20250129_ca_iso_tac_only.derived.csv").read_bytes(),
        (F / "oasis" / "sld_fcst_7da_20250219_20250227.zip").read_bytes()]),
    "caiso-ra-outlook": (caiso_ra.parse, [
        (F / "outlook" / "history_20260311_rtm_forecast_7day.csv").read_bytes()]),
    "caiso-notice": (caiso_notices.parse, [
        p.read_bytes() for p in sorted((F / "notices" / "heatwave_2022").glob("*.eml"))[30:36]]),
}


def run(parser: Parser, raw: bytes) -> None:
    try:
        out = parser(raw, FETCHED)
    except ParseError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return
    assert isinstance(out, list) and all(isinstance(c, Condition) for c in out)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    raw = bytearray(draw(st.sampled_from(seeds)))
    op = draw(st.sampled_from(["truncate", "flip", "splice", "duplicate"]))
    if op == "truncate" or not raw:
        return bytes(raw[: draw(st.integers(0, len(raw)))])
    i = draw(st.integers(0, len(raw) - 1))
    if op == "flip":
        raw[i] = draw(st.integers(0, 255))
    elif op == "splice":
        raw[i:i] = draw(st.binary(max_size=40))
    else:
        raw += raw[i:]
    return bytes(raw)


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parser_never_raises_anything_but_parse_error(name: str, data: st.DataObject) -> None:
    parser, seeds = SEEDS[name]
    raw = data.draw(st.one_of(st.binary(max_size=400), mutated(seeds)))
    run(parser, raw)


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(max_examples=25, deadline=None)
@given(text=st.text(max_size=300))
def test_parser_on_arbitrary_text(name: str, text: str) -> None:
    run(SEEDS[name][0], text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_oversized_input_is_handled(name: str) -> None:
    parser, seeds = SEEDS[name]
    run(parser, seeds[0] * 50 + b"\0" * 1_000_000)


def _corrupt_zip() -> bytes:
    raw = bytearray((F / "oasis" / "sld_fcst_7da_20250219_20250227.zip").read_bytes())
    raw[300:340] = b"\xff" * 40  # inside the deflate stream: zlib itself fails
    return bytes(raw)


@pytest.mark.parametrize(("name", "raw"), [
    # Inputs fuzzing once found to escape as something other than ParseError.
    ("caiso-oasis", _corrupt_zip()),
    ("caiso-demand", "Time,Current demand\n0\u00b3:30,1\n".encode()),
    ("caiso-demand", "Time,Current demand\n00:05,\u00b2\n".encode()),
    ("caiso-notice", b"The California ISO has issued a Flex Alert for the CAISO Grid effective "
                     b"Thursday, September 8, 2022. Californians are urged to conserve electricity"
                     b" from September 8 at 0:00 PM to September 8 at 10:00 PM"),
    ("caiso-oasis", b"INTERVALSTARTTIME_GMT,\"OPR\nDT\"\n1,2\n"),
])
def test_inputs_found_by_fuzzing(name: str, raw: bytes) -> None:
    parser, _ = SEEDS[name]
    with pytest.raises(ParseError) as info:
        parser(raw, FETCHED)
    assert "\n" not in str(info.value)
