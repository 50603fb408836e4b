"""The mute stage: each muter gives a bounded reason to suppress a candidate, or None.

- quiet hours, in the subscriber's time zone; severities at or above the bypass level pass;
- inhibition, like Alertmanager's: an active EEA of a higher level for the same region mutes
  reminders of lower EEA levels, Flex Alerts and RMOs (their issue and all-clear still pass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from consumers.regions import coverage
from consumers.stages import Candidate, Context
from monitor.events import Kind
from monitor.notifications import Transition

Muter = Callable[[Candidate, Context], str | None]

INHIBITABLE = frozenset({Kind.CAISO_EEA, Kind.CAISO_FLEX_ALERT, Kind.CAISO_RMO})


def quiet_hours(cand: Candidate, ctx: Context) -> str | None:
    quiet = cand.sub.quiet
    # A test and a heartbeat come when the subscriber asked for them; a heartbeat held back
    # would read as capmon being down.
    if quiet is None or cand.item.transition in (Transition.TEST, Transition.HEARTBEAT):
        return None
    if cand.severity >= quiet.bypass_severity:
        return None
    return "quiet_hours" if quiet.is_quiet(ctx.now) else None


def inhibition(cand: Candidate, ctx: Context) -> str | None:
    target = cand.item.condition
    if cand.item.transition != Transition.REMINDER or target.kind not in INHIBITABLE:
        return None
    target_cover = coverage(target)
    for source in ctx.inhibitors:
        if source.id == target.id or source.kind != Kind.CAISO_EEA:
            continue
        if source.severity <= target.severity:
            continue
        source_cover = coverage(source)
        if (source_cover.everything or target_cover.everything
                or not source_cover.names.isdisjoint(target_cover.names)):
            return "inhibited"
    return None


MUTERS: tuple[Muter, ...] = (inhibition, quiet_hours)


def mute_reason(cand: Candidate, ctx: Context) -> str | None:
    for muter in MUTERS:
        reason = muter(cand, ctx)
        if reason is not None:
            return reason
    return None


async def mute(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """Mark each muted candidate with its reason; `admit` records it as suppressed."""
    out = []
    for cand in cands:
        reason = mute_reason(cand, ctx)
        out.append(cand if reason is None else dataclasses.replace(cand, muted=reason))
    return out
