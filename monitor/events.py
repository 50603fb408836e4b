"""The event model: conditions and their revisions.

A *condition* is one thing in the world that can be alerted on (an EEA notice, a Flex Alert,
tomorrow's peak forecast for a TAC area, an SCE DR event, a stale source) with a stable `id`.
Producers publish a new *revision* whenever what they observe of it changes; decide derives
transitions by comparing revisions. Conditions are immutable values.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from functools import total_ordering
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from monitor.attributes import ATTRIBUTE_MODELS, KindAttributes


class Kind(StrEnum):
    CAISO_EEA = "caiso.eea"
    CAISO_FLEX_ALERT = "caiso.flex_alert"
    CAISO_RMO = "caiso.rmo"
    CAISO_TRANSMISSION_EMERGENCY = "caiso.transmission_emergency"
    CAISO_LEGACY = "caiso.legacy"
    CAISO_STATUS = "caiso.status"
    CAISO_DEMAND = "caiso.demand"
    CAISO_PEAK_FORECAST = "caiso.peak_forecast"
    CAISO_RA_OUTLOOK = "caiso.ra_outlook"
    SCE_DR_EVENT = "sce.dr_event"
    SOURCE_HEALTH = "source.health"


@total_ordering
class Severity(StrEnum):
    """One ladder for every kind; members compare by rank, not alphabetically."""

    INFO = "info"
    ADVISORY = "advisory"
    WATCH = "watch"
    WARNING = "warning"
    EMERGENCY = "emergency"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    __hash__ = StrEnum.__hash__


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Status(StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (Status.SCHEDULED, Status.ACTIVE)


# The region that covers every other (CAISO's whole balancing area).
CAISO_GRID = "CAISO Grid"


class Window(BaseModel):
    """Effective start and end; either may be unknown (SCE's `TBD` end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("window end is before its start")
        return self


class Condition(BaseModel):
    """One revision of one condition. Its JSON form is the contract between producers and
    decide, and what webhooks and `/v1/conditions` show."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=3, max_length=300, pattern=r"^[a-z][a-z0-9_.-]*(:.+)?$")
    kind: Kind
    severity: Severity
    status: Status
    window: Window = Window()
    regions: tuple[str, ...] = ()
    # Described as any object: which of monitor.attributes' models it is follows from `kind`.
    attributes: Annotated[SerializeAsAny[KindAttributes], WithJsonSchema({
        "type": "object", "description": "kind-specific: the fields of the attribute model "
                                         "of `kind`"})]
    revision: int = Field(ge=0)
    observed_at: AwareDatetime
    source_url: str | None = None

    @field_validator("attributes", mode="before")
    @classmethod
    def _typed_attributes(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:  # kind itself failed; its own error is reported
            return value
        model = ATTRIBUTE_MODELS[str(kind)]
        if isinstance(value, model):
            return value
        if isinstance(value, KindAttributes):
            raise ValueError(f"{kind} takes {model.__name__}, not {type(value).__name__}")
        return model.model_validate(value)

    @field_validator("regions", mode="after")
    @classmethod
    def _sorted_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Sorted and unique, so equal observations hash equal whatever order the source used.
        return tuple(sorted(set(value)))

    # -- identity and change detection -------------------------------------------------------

    def content_hash(self) -> str:
        """Hash of what was observed, without when/where it was observed or its revision.

        Producers publish only when this changes; decide compares it to spot no-op revisions.
        """
        body = self.model_dump(mode="json", exclude={"revision", "observed_at", "source_url"})
        return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")))

    def event_id(self) -> str:
        return event_id(self.id, self.revision)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Condition:
        return cls.model_validate_json(raw)


def event_id(condition_id: str, revision: int) -> str:
    """Deterministic CloudEvent id: republishing the same revision is idempotent."""
    return _sha256(f"{condition_id}\n{revision}")[:32]


def revision_at(observed_at: datetime) -> int:
    """A revision number ordered by observation time, for sources without their own.

    Microseconds since the epoch: monotonic for one producer, deterministic under a replay
    clock. Sources that number their own modifications use those numbers instead.
    """
    return int(observed_at.timestamp() * 1_000_000)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
