"""A source that is one URL, fetched whole on every poll and read by a pure parser.

Today's Outlook's files (`stats.txt`, `demand.csv`, `rtm_forecast_7day.csv`) are such sources;
their modules hold the parser, the name, the URL and the cadence, and this the rest. Each poll
asks with the CDN cache-buster, so the answer is the file as it is now, not a cached copy.
A poll is never `complete`: a file that stops naming a condition (yesterday's demand, a day
past the outlook's horizon) has moved on, which is no news, so `disappeared` keeps the last
revision as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from monitor.events import Condition
from monitor.topics import CAISO
from producers.source import Fetcher, PollResult, Schedule


class Parser(Protocol):
    """The module's pure parser; `source_url` goes into each condition's `source_url`."""

    def __call__(self, raw: bytes, fetched_at: datetime, *,
                 source_url: str | None = None) -> list[Condition]: ...


class SingleUrlSource:
    """One URL on a schedule; a subclass gives its `name` and calls this `__init__`."""

    name: str
    topic = CAISO

    def __init__(self, url: str, schedule: Schedule, parse: Parser) -> None:
        self.url = url
        self.schedule = schedule
        self._parse = parse

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        resp = await fetch.get(self.url, cache_bust=True)
        return PollResult(conditions=tuple(self._parse(resp.body, resp.fetched_at or now,
                                                       source_url=self.url)))

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        return last
