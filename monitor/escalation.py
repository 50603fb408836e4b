"""Escalation policies: who is paged next when nobody acknowledges (docs/decide.md,
Escalation).

A policy is a tenant's ladder of steps. Step 0 names the subscriptions that hear a condition
at or above `min_severity` in the ordinary way; each later step names subscriptions paged
only when nobody acknowledged for `after` since the previous step. A run (monitor/store/
escalations.py) is one condition climbing one policy's ladder.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from monitor.events import Severity
from monitor.subscriptions import Name, parse_duration

MIN_AFTER = timedelta(minutes=1)
MAX_STEPS = 10
# ISO 8601 durations without years or months, as `repeat_interval` takes them (in the
# schema only: pydantic's regex engine has no look-ahead; `parse_duration` checks it).
AFTER_PATTERN = (r"^(?!.*T$)(?!PT?$)P(?:[0-9]{1,4}D)?(?:T(?:[0-9]{1,5}H)?(?:[0-9]{1,6}M)?"
                 r"(?:[0-9]{1,7}S)?)?$")
SubscriptionId = Annotated[str, Field(min_length=1, max_length=36)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EscalationStep(_Model):
    after: str | None = Field(
        default=None, max_length=32, json_schema_extra={"pattern": AFTER_PATTERN},
        description="ISO 8601 duration since the previous step, at least PT1M; "
                    "the first step has none")
    subscriptions: list[SubscriptionId] = Field(
        min_length=1, max_length=20, description="the tenant's own subscriptions")

    @property
    def delay(self) -> timedelta | None:
        return None if self.after is None else parse_duration(self.after)


class PolicySpec(_Model):
    """1-10 steps; only the first without `after`; no subscription twice in one policy."""

    name: Name
    min_severity: Severity = Field(
        default=Severity.EMERGENCY,
        description="notifications at or above it start a run; later steps' subscriptions "
                    "hear this band only when paged")
    steps: list[EscalationStep] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _ladder(self) -> Self:
        for n, step in enumerate(self.steps):
            try:
                delay = step.delay
            except ValueError as exc:
                raise ValueError(f"step {n}: 'after' {exc}") from None
            if n == 0 and delay is not None:
                raise ValueError("the first step is paged at once: it takes no 'after'")
            if n > 0 and delay is None:
                raise ValueError(f"step {n} needs 'after' (how long after step {n - 1})")
            if delay is not None and delay < MIN_AFTER:
                raise ValueError(f"step {n}: 'after' must be at least PT1M")
        seen: set[str] = set()
        for n, step in enumerate(self.steps):
            for sub in step.subscriptions:
                if sub in seen:
                    raise ValueError(f"subscription {sub} is named twice (step {n})")
                seen.add(sub)
        return self

    def first(self) -> frozenset[str]:
        return frozenset(self.steps[0].subscriptions)

    def held(self) -> frozenset[str]:
        """The subscriptions of steps 1 and later: they hear this band only when paged."""
        return frozenset(s for step in self.steps[1:] for s in step.subscriptions)


class Policy(PolicySpec):
    id: str
    tenant_id: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class RunState(StrEnum):
    RUNNING = "running"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    # The last step was paged and nobody has acknowledged yet (an ack still ends it).
    EXHAUSTED = "exhausted"
    CANCELLED = "cancelled"


class Page(_Model):
    """One subscription of one step: paged (its notification key and when) or not yet."""

    step: int
    subscription_id: str
    key: str | None
    paged_at: AwareDatetime | None
    muted: str | None = Field(description="why the page was recorded as suppressed "
                                          "(quiet hours, a silence), if it was")


class Run(_Model):
    id: str
    tenant_id: str
    policy_id: str
    condition_id: str
    transition: str
    severity: Severity
    state: RunState
    step: int = Field(description="the last step paged")
    next_at: AwareDatetime | None = Field(description="when the next step is due")
    started_at: AwareDatetime
    ended_at: AwareDatetime | None
    ended_reason: str | None
    acknowledged_key: str | None
    pages: list[Page]


def policy_for(policies: list[Policy], subscription_id: str,
               severity: Severity) -> Policy | None:
    """The policy a notification of `severity` to this subscription starts: the highest
    `min_severity` at or below it whose first step names the subscription."""
    fitting = [p for p in policies
               if p.min_severity <= severity and subscription_id in p.first()]
    return max(fitting, key=lambda p: (p.min_severity.rank, p.id), default=None)


def held_from(policies: list[Policy]) -> dict[str, Severity]:
    """Subscription id -> the lowest severity at which a policy holds it back."""
    out: dict[str, Severity] = {}
    for p in policies:
        for sub in p.held():
            if sub not in out or p.min_severity < out[sub]:
                out[sub] = p.min_severity
    return out
