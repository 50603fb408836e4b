"""The contract between the polling engine and one source.

A source knows its URLs, its cadence and its format; the engine (producers/engine.py) knows
everything else: scheduling with jitter, timeouts, size limits, conditional requests, the CDN
cache-buster, backoff, staleness and `source.health`, change detection and publishing. Parsing
is a pure function `parse(raw: bytes, fetched_at: datetime) -> list[Condition]`, called from
`poll`, so it is tested on saved responses without any network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.events import Condition


@dataclass(frozen=True)
class Schedule:
    """Poll every `interval_s`, `offset_s` after each multiple of the interval, +- jitter."""

    interval_s: float
    offset_s: float = 0.0
    jitter_s: float = 0.0
    # Never two requests of this source closer than this (OASIS: 5 s, process-wide because
    # one source owns every OASIS request).
    min_spacing_s: float = 0.0
    # Per-request timeout; None takes settings.sources.timeout_s.
    timeout_s: float | None = None
    # Retry delays after a failure: initial * 2**(failures-1), capped; a Retry-After (or
    # OASIS's documented 5 s) is a floor.
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 300.0


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    fetched_at: datetime | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher(Protocol):
    """HTTP as the engine provides it to sources (User-Agent, timeout, size cap, ETags)."""

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = False,
        cache_bust: bool = False,
        timeout_s: float | None = None,
    ) -> Response:
        """Raise FetchError on transport failure, a non-2xx/304 status or an oversized body
        (reason "too_large"). `conditional` sends the ETag/Last-Modified seen last for this URL
        and returns status 304 when unchanged; `cache_bust` appends `_=<unix seconds>`."""
        ...


@dataclass(frozen=True)
class PollResult:
    """What one poll observed.

    `conditions` is everything the source says now. When `complete` is true, it is the full
    set of the source's open conditions, and any open condition the engine published before
    that is missing now has disappeared (see `Source.disappeared`). `unchanged` means the
    source answered 304 / "no update since" and nothing was parsed.
    """

    conditions: tuple[Condition, ...] = ()
    complete: bool = False
    unchanged: bool = False


class Source(Protocol):
    name: str  # metric label and source.health key, e.g. "caiso-stats"
    topic: str  # monitor.topics.CAISO / SCE
    schedule: Schedule

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        """Fetch and parse once; raise FetchError or ParseError on failure."""
        ...

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        """The revision to publish when an open condition is no longer listed
        (e.g. ended after its window, cancelled before it started)."""
        ...
