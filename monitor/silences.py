"""Silences, like Alertmanager's: a tenant says "not these, from then until then", with who
said it and why. Decide records what a silence holds back as suppressed, with the silence's
id as the reason, so the delivery log shows what was not sent and on whose word.

An all-clear is not held back when the subscription was told of the condition before: a
scheduler who heard "EEA 2 issued" must hear that it ended, silence or not (unless the silence
says `include_all_clear`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from monitor.events import Kind, Severity
from monitor.subscriptions import Label

REASON_PREFIX = "silenced:"


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SilenceMatch(_Model):
    """Every matcher given must hold (an empty list matches anything). At least one must
    narrow the silence, and `max_severity` may not be below `min_severity`."""

    kinds: list[Kind] = Field(default_factory=list, max_length=20)
    condition_ids: list[str] = Field(default_factory=list, max_length=100,
                                     description="exact condition ids")
    regions: list[Label] = Field(default_factory=list, max_length=500,
                                 description="every region the condition names lies inside these "
                                             "(a CAISO-wide notice only inside CAISO Grid)")
    min_severity: Severity = Severity.INFO
    max_severity: Severity = Severity.CRITICAL
    programs: list[Label] = Field(default_factory=list, max_length=50,
                                  description="SCE DR programs; other kinds do not match")
    subscription_ids: list[str] = Field(default_factory=list, max_length=100,
                                        description="only these subscriptions; empty: all "
                                                    "of the tenant's")

    @model_validator(mode="after")
    def _narrow(self) -> Self:
        if self.max_severity < self.min_severity:
            raise ValueError("max_severity is below min_severity")
        # A silence of everything is an outage nobody would notice: say what it is for.
        if not (self.kinds or self.condition_ids or self.regions or self.programs
                or self.subscription_ids or self.min_severity > Severity.INFO
                or self.max_severity < Severity.CRITICAL):
            raise ValueError("a silence needs at least one matcher")
        return self


class SilenceSpec(_Model):
    """`ends_at` must be after `starts_at` and after now; `match.subscription_ids` must be
    the tenant's own."""

    match: SilenceMatch
    starts_at: AwareDatetime | None = Field(default=None, description="default: now")
    ends_at: AwareDatetime
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)
    include_all_clear: bool = Field(
        default=False, description="also hold back the all-clear of a condition the "
                                   "subscription was already told of")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Silence(_Model):
    id: str
    tenant_id: str
    match: SilenceMatch
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str
    comment: str
    include_all_clear: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime

    def state(self, now: datetime) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE if now < self.ends_at else SilenceState.EXPIRED

    @property
    def reason(self) -> str:
        """The suppression reason in the ledger: the prefix keeps metrics' labels bounded."""
        return REASON_PREFIX + self.id


class SilenceView(Silence):
    """A silence as the API shows it, with its state at the time of asking."""

    status: SilenceState

    @classmethod
    def of(cls, s: Silence, now: datetime) -> SilenceView:
        return cls(**s.model_dump(), status=s.state(now))
