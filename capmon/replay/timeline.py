"""A scenario's `timeline.json`: which file each URL path serves from which scenario time."""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Snapshot(_Model):
    from_: AwareDatetime = Field(alias="from")
    file: str


class SnapshotsPath(_Model):
    """Serve the latest file whose `from` is not after now (Flex API, SCE JSON)."""

    type: Literal["snapshots"]
    content_type: str
    files: tuple[Snapshot, ...] = Field(min_length=1)


class SeriesPath(_Model):
    """Files of JSON lines `{"at", "body"}`: serve the latest body at or before now."""

    type: Literal["series"]
    content_type: str
    files: tuple[Snapshot, ...] = Field(min_length=1)


class DayCsvPath(_Model):
    """One full-day CSV per Pacific day, revealed as the day goes (Today's Outlook)."""

    type: Literal["day_csv"]
    content_type: str
    time_column: str
    # Column -> minutes after (negative: before) a row's time from which its value is known.
    reveal_minutes: dict[str, int]
    days: dict[date, str]


class OasisForecast(_Model):
    market: Literal["DAM", "2DA", "7DA"]
    trade_date: date
    published: AwareDatetime
    file: str


class OasisPath(_Model):
    type: Literal["oasis"]
    forecasts: tuple[OasisForecast, ...]


class MailboxPath(_Model):
    """Notice emails, each delivered at its `from` time."""

    type: Literal["mailbox"]
    messages: tuple[Snapshot, ...]


PathSpec = Annotated[SnapshotsPath | SeriesPath | DayCsvPath | OasisPath | MailboxPath,
                     Field(discriminator="type")]


class Timeline(_Model):
    scenario: str
    description: str = ""
    timezone: str
    start: AwareDatetime
    end: AwareDatetime
    paths: dict[str, PathSpec]
    root: Path = Path(".")

    def file(self, rel: str) -> Path:
        return self.root / rel


def latest(snapshots: tuple[Snapshot, ...], now: datetime) -> Snapshot | None:
    """The snapshot in force at `now` (snapshots are sorted by `from`)."""
    i = bisect.bisect_right([s.from_ for s in snapshots], now)
    return snapshots[i - 1] if i else None


def load_timeline(scenario: Path) -> Timeline:
    """Load and check a scenario folder's timeline.json: every file it names must exist."""
    path = scenario / "timeline.json"
    try:
        raw = json.loads(path.read_text())
        timeline = Timeline.model_validate({**raw, "root": scenario})
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigError(f"bad scenario timeline {path}: {exc}") from None
    missing = []
    for spec in timeline.paths.values():
        files: list[str] = []
        if isinstance(spec, SnapshotsPath | SeriesPath):
            files = [s.file for s in spec.files]
            if list(spec.files) != sorted(spec.files, key=lambda s: s.from_):
                raise ConfigError(f"{path}: snapshots out of order")
        elif isinstance(spec, MailboxPath):
            files = [m.file for m in spec.messages]
        elif isinstance(spec, DayCsvPath):
            files = list(spec.days.values())
        elif isinstance(spec, OasisPath):
            files = [f.file for f in spec.forecasts]
        missing += [f for f in files if not (scenario / f).is_file()]
    if missing:
        raise ConfigError(f"{path}: missing files: {', '.join(missing[:5])}")
    return timeline
