"""Who took the emergency: the demo's view of acknowledgements and escalation runs.

Read through their owners only (`monitor/ledger/acks.py` by notification key,
`monitor/store/escalations.py` `list_runs` and the policy store by tenant). `OnCall.look`
says what is new since the last look, for the live timeline; `summary` is what summary.json
keeps of them. A look queries the store only when a sink has received something since the
last one: an acknowledgement answers a message (a keypress is heard before its call ends),
and an escalation step pages someone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from capmon.demo.subscribers import DemoSubscription
from monitor import ledger
from monitor.clock import PACIFIC
from monitor.escalation import Run
from monitor.ledger import acks
from monitor.store import Store, escalations
from monitor.store import escalation_policies as policy_store
from monitor.wording import wording

if TYPE_CHECKING:
    # Only the type: the sinks need the demo extra, and this module reads the store alone.
    from capmon.demo.sinks import Received


@dataclass(frozen=True)
class Acknowledged:
    ack: acks.Ack
    subscription_id: str
    # What was acknowledged, in the words of its lead item ("CAISO EEA 3").
    label: str


@dataclass(frozen=True)
class StepPaged:
    run_id: str
    policy: str
    tenant_id: str
    condition_id: str
    step: int
    at: datetime
    subscription_ids: list[str]
    keys: list[str]


@dataclass
class OnCall:
    store: Store
    subs: list[DemoSubscription]
    # Every message the sinks have received so far.
    received: Callable[[], list[Received]]
    _looked_at: int = -1
    _acked: set[str] = field(default_factory=set)
    _paged: set[tuple[str, int]] = field(default_factory=set)
    _policies: dict[str, str] = field(default_factory=dict)  # policy id -> name

    async def look(self) -> tuple[list[Acknowledged], list[StepPaged]]:
        got = self.received()
        if len(got) == self._looked_at:
            return [], []
        self._looked_at = len(got)
        open_keys = [r.notification_key for r in got
                     if r.notification_key and r.notification_key not in self._acked]
        async with self.store.connect() as conn:
            found = await acks.acks_of(conn, open_keys)
            new_acks = [await _acknowledged(conn, a)
                        for a in sorted(found.values(), key=lambda a: (a.at, a.key))]
            steps = [s for s in _steps(await self._runs(conn), self._policies)
                     if (s.run_id, s.step) not in self._paged]
        self._acked.update(found)
        self._paged.update((s.run_id, s.step) for s in steps)
        return [a for a in new_acks if a is not None], steps

    async def _runs(self, conn: AsyncConnection) -> list[Run]:
        runs: list[Run] = []
        for tenant_id in sorted({s.tenant_id for s in self.subs}):
            runs += await escalations.list_runs(conn, tenant_id, limit=10_000)
            if any(r.policy_id not in self._policies for r in runs):
                self._policies.update({p.id: p.name for p in await policy_store.list_policies(
                    conn, tenant_id, limit=10_000)})
        return sorted(runs, key=lambda r: (r.started_at, r.id))

    async def summary(self, keys: list[str]) -> dict[str, Any]:
        """summary.json's `acknowledgements` (of these delivered keys) and `escalations`."""
        names = {s.id: s.name for s in self.subs}
        tenants = {s.tenant_id: s.tenant for s in self.subs}
        async with self.store.connect() as conn:
            found = await acks.acks_of(conn, keys)
            acked = [await _acknowledged(conn, a)
                     for a in sorted(found.values(), key=lambda a: (a.at, a.key))]
            runs = await self._runs(conn)

        def ack_json(a: Acknowledged) -> dict[str, Any]:
            return {"key": a.ack.key, "subscription": names.get(a.subscription_id),
                    "by": a.ack.by, "via": a.ack.via.value,
                    "at": a.ack.at.astimezone(PACIFIC).isoformat()}

        by_key = {a.ack.key: a for a in acked if a is not None}
        return {
            "acknowledgements": [ack_json(a) for a in by_key.values()],
            "escalations": [{
                "policy": self._policies.get(run.policy_id, run.policy_id),
                "tenant": tenants.get(run.tenant_id, run.tenant_id),
                "condition": run.condition_id, "severity": run.severity.value,
                "state": run.state.value, "started_at": _pacific(run.started_at),
                "ended_at": None if run.ended_at is None else _pacific(run.ended_at),
                "steps": [{"step": s.step, "at": _pacific(s.at),
                           "subscriptions": [names.get(i, i) for i in s.subscription_ids],
                           "keys": s.keys} for s in _steps([run], self._policies)],
                "acknowledgement": None if run.acknowledged_key not in by_key
                else ack_json(by_key[run.acknowledged_key])}
                for run in runs]}


def _pacific(at: datetime) -> str:
    return at.astimezone(PACIFIC).isoformat()


async def _acknowledged(conn: AsyncConnection, ack: acks.Ack) -> Acknowledged | None:
    entry = await ledger.get(conn, ack.key)
    if entry is None:
        return None
    n = entry.notification()
    lead = max(n.items, key=lambda i: i.condition.severity.rank)
    return Acknowledged(ack, n.subscription_id, wording(lead.condition, n.decided_at).label)


def _steps(runs: list[Run], policies: dict[str, str]) -> list[StepPaged]:
    """Each step of these runs that paged someone (a suppressed page pages nobody)."""
    out = []
    for run in runs:
        by_step: dict[int, list[tuple[str, str, datetime]]] = {}
        for g in run.pages:
            if g.key is not None and g.paged_at is not None and g.muted is None:
                by_step.setdefault(g.step, []).append((g.subscription_id, g.key, g.paged_at))
        for step, pages in sorted(by_step.items()):
            out.append(StepPaged(
                run_id=run.id, policy=policies.get(run.policy_id, run.policy_id),
                tenant_id=run.tenant_id, condition_id=run.condition_id, step=step,
                at=min(p[2] for p in pages), subscription_ids=[p[0] for p in pages],
                keys=[p[1] for p in pages]))
    return out
