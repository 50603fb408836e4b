"""Escalation runs (`escalations`, `escalation_pages`; this module is their only writer and
owns the run's state machine):

    running ──ack──▶ acknowledged
       │ ├──the condition ends──▶ resolved
       │ ├──policy deleted, or a run of a higher severity of the same condition──▶ cancelled
       └──last step paged──▶ exhausted ──ack──▶ acknowledged

Decide starts a run in the transaction that admits the first step, pages each later step in
the tick that advances the run, and the advance is a conditional update on (id, step,
running): two deciders, or an acknowledgement racing a tick, never page a step twice. The
acknowledgement itself (monitor/ledger/acks.py) calls `acknowledged` in its own transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.escalation import Page, Policy, Run, RunState
from monitor.events import Severity
from monitor.metrics import ESCALATION_STEPS, ESCALATIONS_ENDED, ESCALATIONS_STARTED
from monitor.store.engine import in_chunks, insert_ignore
from monitor.store.schema import escalation_pages, escalations
from monitor.store.subscriptions import aware
from monitor.subscriptions import parse_duration

_E, _G = escalations.c, escalation_pages.c
_OPEN = (RunState.RUNNING.value, RunState.EXHAUSTED.value)


def run_id(policy_id: str, condition_id: str, facts: dict[str, Any]) -> str:
    """Deterministic: a replayed or re-derived onset finds the run it started."""
    body = json.dumps([policy_id, condition_id, facts], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class NewRun:
    """A run to start: the onset of `condition_id` that `policy` answers, and the keys of
    the first step's notifications (subscription id -> key)."""

    tenant_id: str
    policy: Policy
    condition_id: str
    transition: str
    severity: Severity
    facts: dict[str, Any]
    first: dict[str, str]

    @property
    def id(self) -> str:
        return run_id(self.policy.id, self.condition_id, self.facts)


@dataclass(frozen=True)
class DueRun:
    id: str
    tenant_id: str
    policy_id: str
    condition_id: str
    transition: str
    facts: dict[str, Any]
    steps: list[dict[str, Any]]
    step: int

    @property
    def next_step(self) -> int:
        return self.step + 1

    def subscriptions(self, step: int) -> list[str]:
        return list(self.steps[step]["subscriptions"])


def _ladder(policy: Policy) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in policy.steps]


def _after(steps: list[dict[str, Any]], n: int) -> timedelta | None:
    """The delay before step `n`, or None when there is no such step."""
    if n >= len(steps):
        return None
    return parse_duration(steps[n]["after"])


async def start(conn: AsyncConnection, runs: Sequence[NewRun], now: datetime) -> list[str]:
    """Start these runs (a run already there is left as it is) with their first step paged;
    a running run of the same policy and condition at another severity is cancelled (the
    new one, of a higher severity, takes over). Returns the ids of the runs started."""
    if not runs:
        return []
    by_id = {r.id: r for r in runs}
    existing: set[str] = set()
    for chunk in in_chunks(by_id):
        existing.update((await conn.execute(sa.select(_E.id).where(_E.id.in_(chunk))))
                        .scalars())
    new = [r for rid, r in by_id.items() if rid not in existing]
    if new:
        rows = []
        for r in new:
            ladder = _ladder(r.policy)
            after = _after(ladder, 1)
            rows.append({
                "id": r.id, "tenant_id": r.tenant_id, "policy_id": r.policy.id,
                "condition_id": r.condition_id, "transition": r.transition,
                "severity": r.severity.value, "facts": r.facts, "steps": ladder,
                "state": (RunState.RUNNING if after is not None else RunState.EXHAUSTED).value,
                "step": 0, "next_at": None if after is None else now + after,
                "started_at": now, "ended_at": None, "ended_reason": None,
                "acknowledged_key": None})
        await conn.execute(insert_ignore(conn, escalations), rows)
        await conn.execute(insert_ignore(conn, escalation_pages), [
            {"run_id": r.id, "subscription_id": sub, "step": n, "key": None,
             "paged_at": None, "muted": None}
            for r in new for n, step in enumerate(r.policy.steps) for sub in step.subscriptions])
        await conn.execute(
            escalations.update()
            .where(_E.policy_id == sa.bindparam("p_policy"),
                   _E.condition_id == sa.bindparam("p_condition"),
                   _E.id != sa.bindparam("p_id"), _E.state == RunState.RUNNING.value)
            .values(state=RunState.CANCELLED.value, ended_at=now, ended_reason="superseded",
                    next_at=None),
            [{"p_policy": r.policy.id, "p_condition": r.condition_id, "p_id": r.id}
             for r in new])
        ESCALATIONS_STARTED.inc(len(new))
        for r in new:
            if len(r.policy.steps) == 1:
                ESCALATIONS_ENDED.labels(outcome=RunState.EXHAUSTED.value).inc()
    await mark_paged(conn, [(r.id, sub, key, None) for r in runs
                            for sub, key in r.first.items()], now)
    return [r.id for r in new]


async def mark_paged(conn: AsyncConnection,
                     pages: Sequence[tuple[str, str, str, str | None]], now: datetime) -> None:
    """(run id, subscription id, notification key, why it was suppressed or None): the
    subscription's step was decided. A page already recorded is left as it is."""
    if not pages:
        return
    p = sa.bindparam
    await conn.execute(
        escalation_pages.update()
        .where(_G.run_id == p("p_run"), _G.subscription_id == p("p_sub"), _G.key.is_(None))
        .values(key=p("p_key"), muted=p("p_muted"), paged_at=now),
        [{"p_run": r, "p_sub": s, "p_key": k, "p_muted": m} for r, s, k, m in pages])


async def due(conn: AsyncConnection, now: datetime) -> list[DueRun]:
    """Running runs whose next step's time has come."""
    rows = await conn.execute(sa.select(escalations).where(
        _E.state == RunState.RUNNING.value, _E.next_at <= now).order_by(_E.next_at, _E.id))
    return [DueRun(id=r.id, tenant_id=r.tenant_id, policy_id=r.policy_id,
                   condition_id=r.condition_id, transition=r.transition, facts=r.facts,
                   steps=r.steps, step=r.step) for r in rows]


async def advance(conn: AsyncConnection, run: DueRun, now: datetime) -> bool:
    """Record `run`'s next step as paged, if the run is still where `due` found it: False
    when an acknowledgement, the all-clear or another decider got there first (then the
    step's notifications must be dropped)."""
    n = run.next_step
    after = _after(run.steps, n + 1)
    state = RunState.RUNNING if after is not None else RunState.EXHAUSTED
    result = await conn.execute(
        escalations.update()
        .where(_E.id == run.id, _E.step == run.step, _E.state == RunState.RUNNING.value)
        .values(step=n, state=state.value, next_at=None if after is None else now + after))
    if result.rowcount != 1:
        return False
    ESCALATION_STEPS.labels(step=str(n)).inc()
    if state is RunState.EXHAUSTED:
        ESCALATIONS_ENDED.labels(outcome=state.value).inc()
    return True


async def acknowledged(conn: AsyncConnection, tenant_id: str, subscription_id: str,
                       condition_ids: Iterable[str], key: str, now: datetime) -> int:
    """An acknowledgement of `key` (to `subscription_id`, about these conditions) ends every
    open run of the tenant on those conditions whose ladder names the subscription."""
    ids = sorted(set(condition_ids))
    if not ids:
        return 0
    members = sa.select(_G.run_id).where(_G.subscription_id == subscription_id)
    result = await conn.execute(
        escalations.update()
        .where(_E.tenant_id == tenant_id, _E.condition_id.in_(ids), _E.state.in_(_OPEN),
               _E.id.in_(members))
        .values(state=RunState.ACKNOWLEDGED.value, acknowledged_key=key, ended_at=now,
                ended_reason=None, next_at=None))
    count = int(result.rowcount or 0)
    if count:
        ESCALATIONS_ENDED.labels(outcome=RunState.ACKNOWLEDGED.value).inc(count)
    return count


async def resolve(conn: AsyncConnection, condition_ids: Iterable[str], now: datetime) -> None:
    """These conditions ended or were cancelled: their running runs page nobody more."""
    ids = sorted(set(condition_ids))
    if not ids:
        return
    result = await conn.execute(
        escalations.update()
        .where(_E.condition_id.in_(ids), _E.state == RunState.RUNNING.value)
        .values(state=RunState.RESOLVED.value, ended_at=now, next_at=None))
    if result.rowcount:
        ESCALATIONS_ENDED.labels(outcome=RunState.RESOLVED.value).inc(int(result.rowcount))


async def paged(conn: AsyncConnection,
                condition_ids: Iterable[str]) -> list[tuple[str, str, str]]:
    """(tenant id, subscription id, condition id) of every subscription a run of these
    conditions paged (and did not suppress), whatever the run's state."""
    ids = sorted(set(condition_ids))
    if not ids:
        return []
    rows = await conn.execute(
        sa.select(_E.tenant_id, _G.subscription_id, _E.condition_id)
        .join(escalation_pages, _G.run_id == _E.id)
        .where(_E.condition_id.in_(ids), _G.key.is_not(None), _G.muted.is_(None))
        .order_by(_E.id, _G.step, _G.subscription_id))
    return [(r[0], r[1], r[2]) for r in rows]


async def acknowledged_pairs(conn: AsyncConnection,
                             condition_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(subscription id, condition id) for every subscription of an acknowledged run's
    ladder: their reminders of the condition stop."""
    ids = sorted(set(condition_ids))
    if not ids:
        return set()
    rows = await conn.execute(
        sa.select(_G.subscription_id, _E.condition_id)
        .join(escalation_pages, _G.run_id == _E.id)
        .where(_E.condition_id.in_(ids), _E.state == RunState.ACKNOWLEDGED.value))
    return {(r[0], r[1]) for r in rows}


async def cancel_policy(conn: AsyncConnection, policy_id: str, now: datetime) -> None:
    result = await conn.execute(
        escalations.update()
        .where(_E.policy_id == policy_id, _E.state.in_(_OPEN))
        .values(state=RunState.CANCELLED.value, ended_at=now, ended_reason="policy_deleted",
                next_at=None))
    if result.rowcount:
        ESCALATIONS_ENDED.labels(outcome=RunState.CANCELLED.value).inc(int(result.rowcount))


async def next_at(conn: AsyncConnection) -> datetime | None:
    value = (await conn.execute(sa.select(sa.func.min(_E.next_at))
                                .where(_E.state == RunState.RUNNING.value))).scalar()
    return None if value is None else aware(value)


async def list_runs(conn: AsyncConnection, tenant_id: str, *, condition_id: str | None = None,
                    state: RunState | None = None, limit: int = 100,
                    offset: int = 0) -> list[Run]:
    q = sa.select(escalations).where(_E.tenant_id == tenant_id)
    if condition_id is not None:
        q = q.where(_E.condition_id == condition_id)
    if state is not None:
        q = q.where(_E.state == state.value)
    rows = (await conn.execute(q.order_by(_E.started_at.desc(), _E.id)
                               .limit(limit).offset(offset))).all()
    pages: dict[str, list[Page]] = {r.id: [] for r in rows}
    for chunk in in_chunks(pages):
        for g in await conn.execute(sa.select(escalation_pages).where(_G.run_id.in_(chunk))
                                    .order_by(_G.step, _G.subscription_id)):
            pages[g.run_id].append(Page(
                step=g.step, subscription_id=g.subscription_id, key=g.key,
                paged_at=None if g.paged_at is None else aware(g.paged_at), muted=g.muted))
    return [Run(id=r.id, tenant_id=r.tenant_id, policy_id=r.policy_id,
                condition_id=r.condition_id, transition=r.transition,
                severity=Severity(r.severity), state=RunState(r.state), step=r.step,
                next_at=None if r.next_at is None else aware(r.next_at),
                started_at=aware(r.started_at),
                ended_at=None if r.ended_at is None else aware(r.ended_at),
                ended_reason=r.ended_reason, acknowledged_key=r.acknowledged_key,
                pages=pages[r.id]) for r in rows]
