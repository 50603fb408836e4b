"""The mute stage: each muter gives a bounded reason to suppress a candidate, or None.

- a tenant's silence (monitor/silences.py) matching the candidate: the reason names the
  silence; an all-clear of a condition the subscription was already told of still passes,
  unless the silence includes all-clears;
- quiet hours, in the subscriber's time zone; severities at or above the bypass level pass;
- inhibition, like Alertmanager's: an active EEA of a higher level for the same region mutes
  reminders of lower EEA levels, Flex Alerts and RMOs (their issue and all-clear still pass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from consumers.decide.regions import coverage, within
from consumers.decide.stages import Candidate, Context
from consumers.decide.stages.group import told_of
from monitor.attributes import DrEventAttributes
from monitor.events import Kind
from monitor.notifications import Transition
from monitor.silences import Silence

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


_UNSILENCED = (Transition.TEST, Transition.HEARTBEAT)
_ALL_CLEAR = (Transition.ENDED, Transition.CANCELLED)


def silenced_by(cand: Candidate, silence: Silence) -> bool:
    m, c = silence.match, cand.item.condition
    if m.subscription_ids and cand.sub.id not in m.subscription_ids:
        return False
    if m.kinds and c.kind not in m.kinds:
        return False
    if m.condition_ids and c.id not in m.condition_ids:
        return False
    if not m.min_severity <= cand.severity <= m.max_severity:
        return False
    if m.regions and not within(c, frozenset(m.regions)):
        return False
    if m.programs:
        attrs = c.attributes
        return isinstance(attrs, DrEventAttributes) and attrs.program in m.programs
    return True


async def mute(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """Mark each muted candidate with its reason; `admit` records it as suppressed."""
    if not cands:
        return cands
    by_tenant = {t: ctx.index.silences(t, ctx.now) for t in {c.sub.tenant_id for c in cands}}
    silenced: dict[int, Silence] = {}
    for i, cand in enumerate(cands):
        if cand.item.transition in _UNSILENCED:
            continue
        hit = next((s for s in by_tenant.get(cand.sub.tenant_id, ())
                    if silenced_by(cand, s)), None)
        if hit is not None:
            silenced[i] = hit
    # All-clears a silence would hold back, of conditions the subscriber heard of: one query.
    asked = {i: (cands[i].sub.id, cands[i].item.condition.id) for i, s in silenced.items()
             if cands[i].item.transition in _ALL_CLEAR and not s.include_all_clear}
    told = await told_of(ctx.conn, set(asked.values())) if asked else set()
    out = []
    for i, cand in enumerate(cands):
        hit = silenced.get(i)
        reason = (hit.reason if hit is not None and asked.get(i) not in told
                  else mute_reason(cand, ctx))
        out.append(cand if reason is None else dataclasses.replace(cand, muted=reason))
    return out
