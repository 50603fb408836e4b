"""OASIS `SingleZip?queryname=SLD_FCST` as the real service answers it, from scenario files.

Rows of every trade date whose forecast was published by scenario time and whose hours fall
in [startdatetime, enddatetime) go into one CSV member of a zip, named as OASIS names it.
Application errors are HTTP 200 with a zipped XML error report (codes 1000 no data, 1001 bad
parameters, 1002 bad date, 1004 over 31 days), as OASIS does; the throttle is HTTP 429.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

from capmon.replay.timeline import OasisPath
from monitor.clock import PACIFIC

ZIP_TYPE = "application/x-zip-compressed"
THROTTLE_BODY = ("<html><body><p>CAISO Acceptable Use Policy Violation. Please retry your "
                 "request after 5 seconds.</p></body></html>")
_ERRORS = {
    "1000": "No data returned for the specified selection.",
    "1001": "Invalid Parameters of the given report name",
    "1002": "Invalid Date Format, please use format YYYYMMDDThh24:miZ",
    "1004": "Data can be requested for period of 31 days only",
}


def _zip(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(member, date_time=(2022, 1, 1, 0, 0, 0)), data,
                   compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def error_response(code: str, now: datetime, detail: str | None = None) -> web.Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<m:OASISReport xmlns:m="http://www.caiso.com/soa/OASISReport_v1.xsd">\n'
        "<m:MessageHeader>\n"
        f"\t<m:TimeDate>{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S.000Z}</m:TimeDate>\n"
        "\t<m:Source>OASIS</m:Source>\n\t<m:Version>v20131201</m:Version>\n"
        "</m:MessageHeader>\n<m:MessagePayload>\n<m:RTO>\n<m:name>CAISO</m:name>\n"
        f"<m:ERROR>\n<m:ERR_CODE>{code}</m:ERR_CODE>\n"
        f"<m:ERR_DESC>{escape(detail or _ERRORS[code])}</m:ERR_DESC>\n</m:ERROR>\n"
        "</m:RTO>\n</m:MessagePayload>\n</m:OASISReport>\n")
    return web.Response(body=_zip("INVALID_REQUEST.xml", xml.encode()), content_type=ZIP_TYPE,
                        headers={"Content-Disposition": "inline; filename=INVALID_REQUEST.xml.zip"})


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H:%M%z")
    except ValueError:
        return None


@lru_cache(maxsize=256)
def _rows(path: Path) -> tuple[list[str], tuple[tuple[str, ...], ...]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, tuple(tuple(r) for r in reader)


def sld_fcst(spec: OasisPath, root: Path, query: dict[str, str], now: datetime) -> web.Response:
    if query.get("queryname") != "SLD_FCST":
        return error_response("1001", now)
    if query.get("resultformat") != "6":
        return error_response("1001", now, "the replay serves resultformat=6 (CSV) only")
    market = query.get("market_run_id", "")
    start, end = _parse_time(query.get("startdatetime")), _parse_time(query.get("enddatetime"))
    if start is None or end is None or end <= start:
        return error_response("1002", now)
    if end - start > timedelta(days=31):
        return error_response("1004", now)
    header: list[str] = []
    out: list[tuple[str, ...]] = []
    for f in spec.forecasts:
        if f.market != market or f.published > now:
            continue
        header, rows = _rows(root / f.file)
        begin = header.index("INTERVALSTARTTIME_GMT")
        out += [r for r in rows if start <= datetime.fromisoformat(r[begin]) < end]
    if not out:
        return error_response("1000", now)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(out)
    stem = (f"{start.astimezone(UTC):%Y%m%d}_{end.astimezone(UTC):%Y%m%d}_SLD_FCST_{market}_"
            f"{now.astimezone(PACIFIC):%Y%m%d_%H_%M_%S}_v1")
    return web.Response(body=_zip(f"{stem}.csv", buf.getvalue().encode()), content_type=ZIP_TYPE,
                        headers={"Content-Disposition": f"inline; filename={stem}.zip"})
