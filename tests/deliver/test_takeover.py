"""Claims name their sender: a deliver process that dies (no more heartbeats) has its claims
taken over `takeover` after its last beat, not after the 60 s lease; a live sender's claims
are never taken; a sender never takes its own; a clean stop hands claims back at once. A claim
taken while still `sending` says so (`unsettled`): the attempt before it may have been made."""

from __future__ import annotations

from datetime import timedelta

from monitor import ledger
from monitor.clock import ManualClock
from monitor.store import Store
from tests.deliver.helpers import add_subscription, add_tenant, notification

LEASE = timedelta(seconds=60)
TAKEOVER = timedelta(seconds=3)


async def test_a_dead_senders_claims_are_taken_within_seconds(
        store: Store, clock: ManualClock) -> None:
    tenant_id, _ = await add_tenant(store, clock.now())
    sub_id = await add_subscription(store, tenant_id, "sms", "+14155550100", clock.now())
    n = notification(tenant_id, sub_id, "sms", "+14155550100")
    a, b = ledger.Sender(TAKEOVER), ledger.Sender(TAKEOVER)
    async with store.begin() as conn:
        await ledger.beat(conn, a, clock.now())
        await ledger.beat(conn, b, clock.now())
        await ledger.admit(conn, [n], clock.now(), handoff=False)
        first = await ledger.claim(conn, [n], clock.now(), clock.now() + LEASE, a)
        assert set(first) == {n.key} and not first[n.key].unsettled

    taken: dict[str, ledger.Claim] = {}

    async def b_sees() -> tuple[list[str], set[str]]:
        now = clock.now()
        async with store.begin() as conn:
            await ledger.beat(conn, b, now)
            due = [e.key for e in await ledger.due(conn, now, sender=b)]
            taken.update(await ledger.claim(conn, [n], now, now + LEASE, b))
            return due, set(taken)

    # a beats: its claim is its own, for b and for a itself.
    for _ in range(3):
        clock.advance(2)
        async with store.begin() as conn:
            await ledger.beat(conn, a, clock.now())
            assert await ledger.due(conn, clock.now(), sender=a) == []
        assert await b_sees() == ([], set())
    # a is killed: 3 s after its last beat b takes the key over (the lease had 54 s to go).
    clock.advance(2)
    assert await b_sees() == ([], set())
    clock.advance(1.5)
    assert await b_sees() == ([n.key], {n.key})
    # a's attempt never settled: b holds it knowing its fate is unknown.
    assert taken[n.key].unsettled
    async with store.connect() as conn:
        entry = await ledger.get(conn, n.key)
    assert entry is not None and entry.state == "sending"

    # b stops cleanly: what it holds is due again at once, for whoever comes next, still
    # unsettled (b's attempt may have been under way).
    c = ledger.Sender(TAKEOVER)
    async with store.begin() as conn:
        assert await ledger.retire(conn, b, clock.now()) == 1
        assert [e.key for e in await ledger.due(conn, clock.now(), sender=c)] == [n.key]
        again = await ledger.claim(conn, [n], clock.now(), clock.now() + LEASE, c)
        assert set(again) == {n.key} and again[n.key].unsettled
        # Settled, then claimed again (a retry): nothing is unknown about it.
        attempt = ledger.AttemptRecord(number=1, at=clock.now(), channel="sms",
                                       outcome="retry")
        await ledger.settle(conn, [ledger.Verdict.retry(n.key, clock.now(), attempt,
                                                        clock.now(), "server: 500")])
        retried = await ledger.claim(conn, [n], clock.now(), clock.now() + LEASE, c)
        assert set(retried) == {n.key} and not retried[n.key].unsettled
