"""Escalation in decide's pipeline (docs/decide.md, Escalation): four stages around mute.

- `hold` (before mute): a subscription in a later step of a policy does not hear that
  policy's band (severity >= its `min_severity`) through ordinary matching;
- `clear`: a condition that ended or was cancelled resolves its runs, and every subscription
  a run paged (held ones included) gets the all-clear;
- `page` (ticks only): each run whose next step is due advances, conditionally, and that
  step's subscriptions get the onset again, keyed by run and step; a run that another
  decider or an acknowledgement moved first pages nobody;
- `record` (after group): an onset admitted, not muted, to a policy's first step starts a
  run (insert-ignore, deterministic id), and each step's pages are written on the run.

Every statement is in the revision's (or tick's) own transaction, so a run's advance and the
notifications it pages commit together: a crash before the commit pages nobody, one after
it finds the run advanced and the keys in the ledger.
"""

from __future__ import annotations

from typing import Any

from consumers.decide import state
from consumers.decide.stages import Candidate, Context
from monitor.escalation import policy_for
from monitor.events import Severity
from monitor.notifications import EscalationRef, NotificationItem, Transition, notification_key
from monitor.store import escalations

_UNHELD = (Transition.TEST, Transition.HEARTBEAT)
_ALL_CLEAR = (Transition.ENDED, Transition.CANCELLED)


def onset_facts(item: NotificationItem) -> dict[str, Any] | None:
    """What identifies an onset (a transition announcing something new), or None.

    Issued and started at one severity are one onset (one run for the condition, not a
    second page when a scheduled EEA begins); an update that raises the severity, or
    reopens the condition, is a new one."""
    c, t = item.condition, item.transition
    facts: dict[str, Any] = {"severity": c.severity.value}
    if t in (Transition.ISSUED, Transition.STARTED):
        return facts
    if t is Transition.UPDATED:
        if item.facts.get("reopened"):
            return {**facts, "reopened": c.revision}
        previous = item.facts.get("previous") or {}
        before = previous.get("severity")
        if before is not None and Severity(before) < c.severity:
            return facts
    return None


async def hold(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    held = ctx.index.held
    if not cands or not held:
        return cands
    return [c for c in cands if c.item.transition in _UNHELD or c.sub.id not in held
            or c.severity < held[c.sub.id]]


async def clear(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    ended = {c.id: (NotificationItem(transition=d.transition, condition=c), d.key_facts)
             for c, derived in ctx.changes for d in derived if d.transition in _ALL_CLEAR}
    if not ended:
        return cands
    await escalations.resolve(ctx.conn, ended, ctx.now)
    have = {(c.sub.id, c.item.condition.id, c.item.transition) for c in cands}
    out = list(cands)
    for _tenant, sub_id, cid in await escalations.paged(ctx.conn, ended):
        item, key_facts = ended[cid]
        sub = ctx.index.get(sub_id)
        if sub is None or (sub_id, cid, item.transition) in have:
            continue
        have.add((sub_id, cid, item.transition))
        # The key an ordinary all-clear would have: dedup lets one of them through.
        key = notification_key(sub_id, cid, item.transition, key_facts)
        out.append(Candidate(sub=sub, key=key, severity=item.condition.severity, item=item))
    return out


async def page(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    if ctx.revision is not None:
        return cands
    due = await escalations.due(ctx.conn, ctx.now)
    if not due:
        return cands
    current = {c.id: c for _view, c in await state.open_views(ctx.conn)}
    gone = [run.condition_id for run in due if run.condition_id not in current]
    if gone:
        # Closed without an all-clear of its own (superseded): nothing more to page for it.
        await escalations.resolve(ctx.conn, gone, ctx.now)
    out = list(cands)
    for run in due:
        c = current.get(run.condition_id)
        if c is None or not await escalations.advance(ctx.conn, run, ctx.now):
            continue
        n = run.next_step
        ref = EscalationRef(run_id=run.id, policy_id=run.policy_id, step=n)
        transition = Transition(run.transition)
        item = NotificationItem(transition=transition, condition=c)
        facts = {**run.facts, "run": run.id, "step": n}
        for sub_id in run.subscriptions(n):
            sub = ctx.index.get(sub_id)
            if sub is None:
                continue  # paused, unsubscribed or deleted: the step still counts
            out.append(Candidate(sub=sub, key=notification_key(sub_id, c.id, transition, facts),
                                 severity=c.severity, item=item, escalation=ref))
    return out


async def record(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    pages = [(c.escalation.run_id, c.sub.id, c.key, c.muted) for c in cands
             if c.escalation is not None]
    onsets = [(c, facts) for c in cands if c.escalation is None and c.muted is None
              and (facts := onset_facts(c.item)) is not None]
    if onsets:
        runs: dict[str, escalations.NewRun] = {}
        for c, facts in onsets:
            policy = policy_for(ctx.index.policies(c.sub.tenant_id), c.sub.id, c.severity)
            if policy is None:
                continue
            run = escalations.NewRun(
                tenant_id=c.sub.tenant_id, policy=policy, condition_id=c.item.condition.id,
                transition=c.item.transition.value, severity=c.severity, facts=facts,
                first={})
            runs.setdefault(run.id, run).first[c.sub.id] = c.key
        ctx.runs_started.extend(await escalations.start(ctx.conn, list(runs.values()), ctx.now))
    await escalations.mark_paged(ctx.conn, pages, ctx.now)
    return cands
