"""The replay HTTP server: the scenario's snapshots at the sources' own URL paths."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import structlog
from aiohttp import web

from capmon.replay import oasis
from capmon.replay.daycsv import reveal
from capmon.replay.timeline import (
    DayCsvPath,
    MailboxPath,
    OasisPath,
    SeriesPath,
    SnapshotsPath,
    Timeline,
    latest,
    load_timeline,
)
from monitor.clock import PACIFIC, Clock

log = structlog.get_logger(__name__)
CLOCK = web.AppKey("replay_clock", Clock)
TIMELINE = web.AppKey("replay_timeline", Timeline)
OASIS_GAP = web.AppKey("replay_oasis_min_interval_s", float)
_LAST_OASIS = web.AppKey("replay_last_oasis", list)


@lru_cache(maxsize=64)
def _read(path: Path) -> bytes:
    return path.read_bytes()


@lru_cache(maxsize=32)
def _series(path: Path) -> tuple[tuple[datetime, bytes], ...]:
    items = []
    for line in path.read_text().splitlines():
        if line.strip():
            obj = json.loads(line)
            items.append((datetime.fromisoformat(obj["at"]),
                          json.dumps(obj["body"], separators=(",", ":")).encode()))
    return tuple(sorted(items, key=lambda i: i[0]))


def _respond(request: web.Request, body: bytes, content_type: str,
             modified: datetime | None = None) -> web.Response:
    """200 with an ETag (and Last-Modified), or 304 for a matching conditional request."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if modified is not None:
        headers["Last-Modified"] = modified.astimezone(UTC).strftime(
            "%a, %d %b %Y %H:%M:%S GMT")
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    ctype, _, charset = content_type.partition("; charset=")
    return web.Response(body=body, content_type=ctype, charset=charset or None, headers=headers)


def _not_yet(what: str, now: datetime) -> web.Response:
    return web.Response(status=404, text=f"replay: no {what} at scenario time {now.isoformat()}")


async def handle(request: web.Request) -> web.StreamResponse:
    timeline = request.app[TIMELINE]
    now = request.app[CLOCK].now()
    path = request.path
    spec = timeline.paths.get(path)
    if spec is None and path.startswith("/outlook/history/"):
        return _history_csv(request, timeline, now)
    if spec is None and path.startswith("/replay/notices/"):
        return _notice(request, timeline, now)
    if isinstance(spec, SnapshotsPath):
        snap = latest(spec.files, now)
        if snap is None:
            return _not_yet(path, now)
        return _respond(request, _read(timeline.file(snap.file)), spec.content_type,
                        snap.from_)
    if isinstance(spec, SeriesPath):
        return _series_response(request, timeline, spec, now)
    if isinstance(spec, DayCsvPath):
        day = now.astimezone(PACIFIC).date()
        if day not in spec.days:
            return _not_yet(path, now)
        body = reveal(timeline.file(spec.days[day]), day, now, spec.time_column,
                      spec.reveal_minutes)
        return _respond(request, body, spec.content_type)
    if isinstance(spec, OasisPath):
        return _oasis(request, timeline, spec, now)
    if isinstance(spec, MailboxPath):
        listing = [{"name": Path(m.file).name, "delivered_at": m.from_.isoformat(),
                    "url": f"/replay/notices/{Path(m.file).name}"}
                   for m in spec.messages if m.from_ <= now]
        # When the next message arrives: a reader waits for it as an IMAP IDLE client would be
        # woken by the server's push, instead of polling every minute of a twelve-day replay.
        upcoming = [m.from_ for m in spec.messages if m.from_ > now]
        return web.json_response({"now": now.isoformat(), "messages": listing,
                                  "next_at": min(upcoming).isoformat() if upcoming else None})
    raise web.HTTPNotFound(text=f"replay: {path} is not part of scenario {timeline.scenario}")


def _series_response(request: web.Request, timeline: Timeline, spec: SeriesPath,
                     now: datetime) -> web.Response:
    snap = latest(spec.files, now)
    index = spec.files.index(snap) if snap is not None else -1
    # Just after a file's start its first line may not be published yet: use the last one of
    # the file before it.
    while index >= 0:
        items = [i for i in _series(timeline.file(spec.files[index].file)) if i[0] <= now]
        if items:
            at, body = items[-1]
            return _respond(request, body, spec.content_type, at)
        index -= 1
    return _not_yet(request.path, now)


def _history_csv(request: web.Request, timeline: Timeline, now: datetime) -> web.Response:
    parts = request.path.split("/")  # "", "outlook", "history", YYYYMMDD, file
    if len(parts) != 5:
        raise web.HTTPNotFound(text="replay: history is /outlook/history/YYYYMMDD/<file>")
    spec = timeline.paths.get(f"/outlook/current/{parts[4]}")
    stamp = parts[3]
    try:
        if not (len(stamp) == 8 and stamp.isdigit()):
            raise ValueError(stamp)
        day = date.fromisoformat(stamp)
    except ValueError:
        raise web.HTTPNotFound(text="replay: history needs /outlook/history/YYYYMMDD/") from None
    today = now.astimezone(PACIFIC).date()
    if not isinstance(spec, DayCsvPath) or day not in spec.days or day > today:
        return _not_yet(request.path, now)
    if day == today:
        body = reveal(timeline.file(spec.days[day]), day, now, spec.time_column,
                      spec.reveal_minutes)
    else:
        body = _read(timeline.file(spec.days[day]))
    return _respond(request, body, spec.content_type)


def _notice(request: web.Request, timeline: Timeline, now: datetime) -> web.Response:
    name = request.path.rsplit("/", 1)[1]
    for spec in timeline.paths.values():
        if isinstance(spec, MailboxPath):
            for m in spec.messages:
                if Path(m.file).name == name and m.from_ <= now:
                    return _respond(request, _read(timeline.file(m.file)), "message/rfc822")
    return _not_yet(request.path, now)


def _oasis(request: web.Request, timeline: Timeline, spec: OasisPath,
           now: datetime) -> web.Response:
    gap = request.app[OASIS_GAP]
    last = request.app[_LAST_OASIS]
    if gap > 0 and last and (now - last[0]).total_seconds() < gap:
        return web.Response(status=429, text=oasis.THROTTLE_BODY, content_type="text/html")
    last[:] = [now]
    return oasis.sld_fcst(spec, timeline.root, dict(request.query), now)


def create_replay_app(scenario: Path | Timeline, clock: Clock, *,
                      oasis_min_interval_s: float = 0.0) -> web.Application:
    """The replay app; `oasis_min_interval_s` > 0 turns on OASIS's 429 throttle (scenario time)."""
    timeline = scenario if isinstance(scenario, Timeline) else load_timeline(scenario)
    app = web.Application()
    app[TIMELINE] = timeline
    app[CLOCK] = clock
    app[OASIS_GAP] = oasis_min_interval_s
    app[_LAST_OASIS] = []
    app.router.add_get("/replay/clock", _clock)
    app.router.add_get("/{tail:.*}", handle)
    return app


async def _clock(request: web.Request) -> web.Response:
    tl = request.app[TIMELINE]
    return web.json_response({"now": request.app[CLOCK].now().isoformat(),
                              "scenario": tl.scenario, "start": tl.start.isoformat(),
                              "end": tl.end.isoformat()})


FLEX_PATH = "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"


def source_urls(base_url: str) -> dict[str, str]:
    """`SourcesSettings` fields that point capmon's producers at a replay server."""
    return {
        "caiso_outlook_url": f"{base_url}/outlook",
        "caiso_flex_url": f"{base_url}{FLEX_PATH}",
        "caiso_oasis_url": f"{base_url}/oasisapi/SingleZip",
        "sce_api_url": f"{base_url}/m.dr.website/resteasy/services",
        "sce_html_url": f"{base_url}/dr.website",
    }


class ReplayServer:
    """Runs the replay app on 127.0.0.1 (an ephemeral port by default): `async with`."""

    def __init__(self, scenario: Path | Timeline, clock: Clock, *, port: int = 0,
                 oasis_min_interval_s: float = 0.0) -> None:
        self.app = create_replay_app(scenario, clock, oasis_min_interval_s=oasis_min_interval_s)
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def source_urls(self) -> dict[str, str]:
        return source_urls(self.base_url)

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        log.info("replay_listening", url=self.base_url, scenario=self.app[TIMELINE].scenario)
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
