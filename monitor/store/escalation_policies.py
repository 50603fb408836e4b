"""Escalation policies in the store (`escalation_policies`; this module is its only writer),
always by tenant. Deleting a policy cancels its runs (monitor/store/escalations.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.escalation import EscalationStep, Policy, PolicySpec
from monitor.events import Severity
from monitor.store import escalations
from monitor.store import subscriptions as sub_store
from monitor.store.schema import escalation_policies
from monitor.store.watched import Watched

_P = escalation_policies.c
# Decide keeps the policies in memory and reloads them when this changes
# (monitor/store/watched.py).
WATCH = Watched(escalation_policies)


class PolicyRefused(Exception):
    """Why a policy cannot be stored: `reason` is not_found (a subscription that is not the
    tenant's) or overlap (a subscription another policy of the band already holds)."""

    def __init__(self, reason: str, detail: str, loc: list[str | int]) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.loc = reason, detail, loc


def _policy(row: Any) -> Policy:
    return Policy(id=row.id, tenant_id=row.tenant_id, name=row.name,
                  min_severity=Severity(row.min_severity),
                  steps=[EscalationStep.model_validate(s) for s in row.steps],
                  created_at=sub_store.aware(row.created_at),
                  updated_at=sub_store.aware(row.updated_at))


def _values(spec: PolicySpec) -> dict[str, Any]:
    return {"name": spec.name, "min_severity": spec.min_severity.value,
            "steps": [s.model_dump(mode="json") for s in spec.steps]}


async def check(conn: AsyncConnection, tenant_id: str, spec: PolicySpec,
                policy_id: str | None = None) -> None:
    """Raise `PolicyRefused` unless every subscription is the tenant's own and none is
    held (a later step) or first (step 0) in another policy of the same `min_severity`: a
    notification must find one policy, and a held subscription one ladder that pages it."""
    named = [(n, at, sub) for n, step in enumerate(spec.steps)
             for at, sub in enumerate(step.subscriptions)]
    missing = await sub_store.not_owned(conn, tenant_id, [sub for _, _, sub in named])
    if missing:
        n, at = next((n, at) for n, at, sub in named if sub == missing[0])
        raise PolicyRefused("not_found", f"no subscription {missing[0]}",
                            ["steps", n, "subscriptions", at])
    for other in await list_policies(conn, tenant_id, limit=10_000):
        if other.id == policy_id or other.min_severity != spec.min_severity:
            continue
        for n, step in enumerate(spec.steps):
            theirs = other.first() if n == 0 else other.held()
            for at, sub in enumerate(step.subscriptions):
                if sub in theirs:
                    where = "first step" if n == 0 else "later steps"
                    raise PolicyRefused(
                        "overlap", f"subscription {sub} is already in the {where} of policy "
                                   f"{other.id} ({other.name!r}) for {spec.min_severity}",
                        ["steps", n, "subscriptions", at])


async def create(conn: AsyncConnection, tenant_id: str, spec: PolicySpec,
                 now: datetime) -> Policy:
    await check(conn, tenant_id, spec)
    p = Policy(**spec.model_dump(), id=str(uuid.uuid4()), tenant_id=tenant_id,
               created_at=now, updated_at=now)
    await conn.execute(escalation_policies.insert().values(
        id=p.id, tenant_id=tenant_id, created_at=now, updated_at=now, **_values(spec)))
    WATCH.changed()
    return p


async def replace(conn: AsyncConnection, policy_id: str, tenant_id: str, spec: PolicySpec,
                  now: datetime) -> Policy | None:
    """A run already climbing keeps the ladder it started with; new runs take this one."""
    old = await get(conn, policy_id, tenant_id)
    if old is None:
        return None
    await check(conn, tenant_id, spec, policy_id)
    await conn.execute(escalation_policies.update().where(_P.id == policy_id)
                       .values(updated_at=now, **_values(spec)))
    WATCH.changed()
    return Policy(**spec.model_dump(), id=policy_id, tenant_id=tenant_id,
                  created_at=old.created_at, updated_at=now)


async def get(conn: AsyncConnection, policy_id: str, tenant_id: str) -> Policy | None:
    row = (await conn.execute(sa.select(escalation_policies).where(
        _P.id == policy_id, _P.tenant_id == tenant_id))).first()
    return None if row is None else _policy(row)


async def list_policies(conn: AsyncConnection, tenant_id: str, *, limit: int = 100,
                        offset: int = 0) -> list[Policy]:
    rows = await conn.execute(sa.select(escalation_policies)
                              .where(_P.tenant_id == tenant_id)
                              .order_by(_P.created_at, _P.id).limit(limit).offset(offset))
    return [_policy(r) for r in rows]


async def every_policy(conn: AsyncConnection) -> list[Policy]:
    """Decide's read: every tenant's policies, in one statement (decide keeps them beside
    its subscription index and reloads them with it)."""
    rows = await conn.execute(sa.select(escalation_policies).order_by(_P.id))
    return [_policy(r) for r in rows]


async def delete(conn: AsyncConnection, policy_id: str, tenant_id: str,
                 now: datetime) -> bool:
    result = await conn.execute(escalation_policies.delete().where(
        _P.id == policy_id, _P.tenant_id == tenant_id))
    if not result.rowcount:
        return False
    WATCH.changed()
    await escalations.cancel_policy(conn, policy_id, now)
    return True
