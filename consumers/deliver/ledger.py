"""Deliver's side of the ledger, group-committed: the claims and the settlements of many sends
share transactions (consumers/deliver/group_commit.py), so a fan-out costs a few commits, not
two per send. Settlements go first in a transaction, then claims: a key settled and claimed again in
one batch (a retry due at once) is claimed after its verdict.

A claim admits a bus record's key if the ledger lacks it, takes it under a lease if it is
due, and reads its endpoint (target and secrets never travel on the bus). A settlement writes
the attempt and the verdict, then the endpoint's side of it (health, disabling, the SMS's
provider id) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.deliver.group_commit import GroupCommit
from monitor import ledger
from monitor.clock import Clock
from monitor.ledger import Claim, State, Verdict
from monitor.notifications import Notification
from monitor.store import Store
from monitor.store import endpoints as endpoint_store
from monitor.store.endpoints import Endpoint


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    endpoint: Endpoint | None  # None: the subscription was deleted
    # An unsettled SMS claim's message SIDs the ledger knows, by attempt number: what the
    # provider's log may hold for the key that is not the unsettled attempt's.
    sms_sids: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class After:
    """What a settlement's endpoint effects changed: the state the key ended in (an SMS whose
    failure callback overtook the send is failed, not delivered) and why an endpoint was
    disabled, if it was."""

    state: State
    error: str | None = None
    disabled: str | None = None


Effects = Callable[[AsyncConnection], Awaitable[After]]


@dataclass(frozen=True)
class Settlement:
    verdict: Verdict
    # An endpoint whose failure run this success ends (written once per healthy spell).
    healthy: str | None = None
    effects: Effects | None = None


@dataclass(frozen=True)
class _ClaimRequest:
    notification: Notification
    admit: bool


class DeliverLedger:
    def __init__(self, store: Store, clock: Clock, lease_s: float, *,
                 sender: ledger.Sender | None = None, max_batch: int = 500,
                 linger_s: float = 0.0) -> None:
        self.store, self.clock = store, clock
        self.lease = timedelta(seconds=lease_s)
        self.sender = sender or ledger.Sender()
        self._writes: GroupCommit[_ClaimRequest | Settlement, Claimed | After | None] = (
            GroupCommit(self._apply, max_batch=max_batch, linger_s=linger_s))

    async def claim(self, n: Notification, *, admit: bool) -> Claimed | None:
        """The claim on `n`, or None when it is not ours to send now (settled, scheduled
        later, or in flight elsewhere under a live lease)."""
        got = await self._writes.submit(_ClaimRequest(n, admit))
        assert got is None or isinstance(got, Claimed)
        return got

    async def settle(self, s: Settlement) -> After:
        """Returns once the verdict is committed."""
        after = await self._writes.submit(s)
        assert isinstance(after, After)
        return after

    async def _apply(self, ops: Sequence[_ClaimRequest | Settlement]
                     ) -> list[Claimed | After | None]:
        now = self.clock.now()
        settlements = [op for op in ops if isinstance(op, Settlement)]
        claims = [op for op in ops if isinstance(op, _ClaimRequest)]
        async with self.store.begin() as conn:
            afters = await self._settle(conn, settlements, now)
            claimed = await self._claim(conn, claims, now)
        done: dict[int, Claimed | After | None] = {**afters, **claimed}
        return [done[id(op)] for op in ops]

    async def _settle(self, conn: AsyncConnection, items: list[Settlement],
                      now: datetime) -> dict[int, Claimed | After | None]:
        if not items:
            return {}
        await ledger.settle(conn, [s.verdict for s in items])
        await endpoint_store.record_successes(
            conn, [s.healthy for s in items if s.healthy is not None], now)
        return {id(s): await s.effects(conn) if s.effects is not None
                else After(s.verdict.state, s.verdict.error) for s in items}

    async def _claim(self, conn: AsyncConnection, reqs: list[_ClaimRequest],
                     now: datetime) -> dict[int, Claimed | After | None]:
        if not reqs:
            return {}
        until = now + self.lease
        got = await ledger.claim(conn, [r.notification for r in reqs], now, until, self.sender)
        # decide admits before it publishes, so a record's key is almost always there; only
        # the keys the claim missed pay for an insert (a record the ledger lacks: a store
        # restored from backup, a bus shared with another ledger).
        missing = [r.notification for r in reqs if r.admit and r.notification.key not in got]
        if missing:
            new = await ledger.admit(conn, missing, now, handoff=False)
            if new:
                got.update(await ledger.claim(conn, [n for n in missing if n.key in new],
                                              now, until, self.sender))
        eps = await endpoint_store.get_endpoints(
            conn, {r.notification.subscription_id for r in reqs if r.notification.key in got},
            now)
        sids = await ledger.sms_sids(conn, {
            r.notification.key for r in reqs if r.notification.channel.type == "sms"
            and (c := got.get(r.notification.key)) is not None and c.unsettled})
        out: dict[int, Claimed | After | None] = {}
        given: set[str] = set()
        for r in reqs:
            n = r.notification
            c = got.get(n.key)
            if c is None or n.key in given:  # the same key twice in one batch: one claim
                out[id(r)] = None
                continue
            given.add(n.key)
            out[id(r)] = Claimed(c, eps.get(n.subscription_id), sids.get(n.key, {}))
        return out
