"""The deliver pipeline's stages: claim -> check endpoint -> gate -> send -> record -> announce.

Each stage takes the frozen `Attempt` context and returns it (possibly enriched with
`dataclasses.replace`) or None, which ends the pipeline because the notification is already
settled, scheduled or in someone else's hands. Every ledger change goes through the
`DeliverLedger`'s group commit: a stage waits until its change is committed, so whatever
point a crash hits, the store says what happens next, and a burst of sends costs a few
transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.deliver.ledger import After, DeliverLedger, Effects, Settlement
from consumers.deliver.limits import Limits
from consumers.notifiers.base import Delivery, EndpointAction, Notifier, SendOutcome
from monitor import ledger
from monitor.bus import Bus
from monitor.clock import Clock
from monitor.config import DeliverSettings
from monitor.delivery import (
    LateFailure,
    dead_letter_event,
    fail_accepted_call,
    fail_accepted_sms,
    next_attempt_at,
)
from monitor.errors import CapmonError
from monitor.ledger import AttemptRecord, State, Verdict
from monitor.metrics import ATTEMPT_LATENCY, DELIVERIES, END_TO_END_LATENCY
from monitor.notifications import Notification
from monitor.store import Store
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.store.endpoints import Endpoint

log = structlog.get_logger("consumers.deliver.deliverer")
# Channels whose provider reports on an attempt after accepting it, by its id.
_TRACKED = frozenset({"sms", "voice"})


@dataclass(frozen=True)
class Deps:
    """What the stages share: built once by the role."""

    settings: DeliverSettings
    store: Store
    bus: Bus
    clock: Clock
    notifiers: dict[str, Notifier]
    limits: Limits
    ledger: DeliverLedger
    rng: random.Random = dataclasses.field(default_factory=random.Random)
    # Endpoints whose last attempt in this process succeeded (saves a write per delivery).
    healthy: set[str] = dataclasses.field(default_factory=set)
    # Send slots (`concurrency`): held from a send until its outcome is committed.
    sends: asyncio.Semaphore = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sends", asyncio.Semaphore(self.settings.concurrency))


@dataclass(frozen=True)
class Attempt:
    """The typed context one notification carries through the stages."""

    notification: Notification
    now: datetime
    from_bus: bool
    endpoint: Endpoint | None = None
    # Attempts made before this one, in total and at the last replay (schedule restart).
    attempts_before: int = 0
    attempt_base: int = 0
    # The claim's previous holder never settled it (monitor.ledger.Claim), and the SMS SIDs
    # the ledger knows for the key then.
    unsettled: bool = False
    sms_sids: Mapping[str, int] = dataclasses.field(default_factory=dict)
    outcome: SendOutcome | None = None
    latency_s: float = 0.0
    state: State | None = None  # the ledger state this attempt settled in
    error: str | None = None
    # Set when this attempt disabled the endpoint (410, or failing for days): why.
    disabled: str | None = None

    @property
    def key(self) -> str:
        return self.notification.key

    @property
    def channel(self) -> str:
        return self.notification.channel.type


Stage = Callable[[Attempt], Awaitable[Attempt | None]]


async def run_stages(stages: Sequence[Stage], attempt: Attempt) -> Attempt | None:
    ctx: Attempt | None = attempt
    for stage in stages:
        assert ctx is not None
        ctx = await stage(ctx)
        if ctx is None:
            return None
    return ctx


def in_slot(slots: asyncio.Semaphore, stages: Sequence[Stage]) -> Stage:
    """Run `stages` holding one of `slots`: a send and the commit of its outcome hold a slot
    together, so a crash can repeat at most `concurrency` sends (those whose outcome was not
    committed yet), however many notifications are claimed and waiting."""

    async def stage(a: Attempt) -> Attempt | None:
        async with slots:
            return await run_stages(stages, a)

    return stage


# -- stages -------------------------------------------------------------------------------------

def claim(d: Deps) -> Stage:
    """Take the key with a lease (admitting it first if it came from the bus and the ledger
    lacks it) and read its endpoint. Anything not due (settled, scheduled, in flight
    elsewhere) stops here."""

    async def stage(a: Attempt) -> Attempt | None:
        got = await d.ledger.claim(a.notification, admit=a.from_bus)
        if got is None:
            return None
        return dataclasses.replace(a, now=d.clock.now(), attempts_before=got.claim.attempt_count,
                                   attempt_base=got.claim.attempt_base, endpoint=got.endpoint,
                                   unsettled=got.claim.unsettled, sms_sids=got.sms_sids)

    return stage


def check_endpoint(d: Deps) -> Stage:
    """A deleted or inactive subscription (disabled, unsubscribed, paused) settles the key as
    suppressed instead of sending."""

    async def stage(a: Attempt) -> Attempt | None:
        ep = a.endpoint
        if ep is not None and ep.status == sub_store.ACTIVE:
            return a
        why = ("subscription deleted" if ep is None
               else f"subscription {ep.status}: {ep.status_reason or ''}".strip())
        await d.ledger.settle(Settlement(Verdict.withheld(a.key, a.now, why)))
        log.info("delivery_suppressed", key=a.key, channel=a.channel, reason=why)
        return None

    return stage


def gate(d: Deps) -> Stage:
    """Circuit breaker and rate limits: wait a little in-process, or defer in the store."""

    async def stage(a: Attempt) -> Attempt | None:
        endpoint = a.notification.subscription_id
        wait, rate_only = d.limits.gate(a.channel, endpoint)
        if rate_only and 0 < wait <= d.settings.max_rate_wait_s:
            await d.clock.sleep(wait)
            wait, _ = d.limits.gate(a.channel, endpoint)
        if wait <= 0:
            return dataclasses.replace(a, now=d.clock.now())
        # Spread deferred keys so an endpoint reopening isn't hit by all of them at once.
        now = d.clock.now()
        later = now + timedelta(seconds=wait * (1 + d.rng.uniform(0, 0.2)))
        await d.ledger.settle(Settlement(Verdict.deferred(
            a.key, now, later, "deferred: endpoint throttled or circuit open")))
        return None

    return stage


def send(d: Deps) -> Stage:
    async def stage(a: Attempt) -> Attempt | None:
        assert a.endpoint is not None
        notifier = d.notifiers.get(a.channel)
        started = d.clock.monotonic()
        if notifier is None:
            outcome = SendOutcome.failed("config", f"channel {a.channel} is not configured",
                                         retriable=True)
        else:
            try:
                outcome = await notifier.send(Delivery(
                    a.notification, a.endpoint, a.attempts_before + 1, a.now,
                    unsettled=a.unsettled, known_ids=a.sms_sids))
            except Exception as exc:  # a notifier bug must cost attempts, not loop forever
                log.exception("notifier_failed", key=a.key, channel=a.channel)
                outcome = SendOutcome.failed("internal", type(exc).__name__, retriable=True)
        latency = d.clock.monotonic() - started
        ATTEMPT_LATENCY.labels(channel=a.channel).observe(latency)
        return dataclasses.replace(a, outcome=outcome, latency_s=latency)

    return stage


def record(d: Deps) -> Stage:
    """Attempt row, ledger verdict, endpoint health and status: one (group) commit."""

    async def stage(a: Attempt) -> Attempt | None:
        o, ep = a.outcome, a.endpoint
        assert o is not None and ep is not None
        done = d.clock.now()
        made = a.attempts_before + 1 - a.attempt_base
        number = a.attempts_before + 1  # the claim is ours: nobody else numbers attempts now
        nxt: datetime | None = None
        if o.ok:
            label = "delivered"
        elif not o.retriable:
            label = "failed"
        else:
            nxt = next_attempt_at(done, made, retry_after=o.retry_after, rng=d.rng,
                                  max_retry_after_s=d.settings.max_retry_after_s)
            label = "retry" if nxt is not None else "exhausted"
        error = None if o.ok else f"{o.reason}: {o.detail}"[:1000]
        attempt = AttemptRecord(number=number, at=a.now, channel=a.channel, outcome=label,
                                status_code=o.status_code,
                                provider_error=o.provider_code or (None if o.ok else o.reason),
                                error=error, latency_s=a.latency_s)
        if o.ok:
            verdict = Verdict.delivered(a.key, done, attempt)
        elif nxt is not None:
            verdict = Verdict.retry(a.key, done, attempt, nxt, error)
        else:
            verdict = Verdict.dead(a.key, done, attempt, error)
        counts = o.retriable and o.reason != "config"
        if not o.ok and counts:
            d.healthy.discard(ep.subscription_id)
        fresh_health = o.ok and ep.subscription_id not in d.healthy
        provider_sent = o.ok and o.provider_id is not None and a.channel in _TRACKED
        failed = not o.ok and counts
        effects = (_effects(d, a, verdict, number, provider_sent=provider_sent, failed=failed)
                   if provider_sent or failed or o.action != EndpointAction.NONE else None)
        after = await d.ledger.settle(Settlement(
            verdict, healthy=ep.subscription_id if fresh_health else None, effects=effects))
        if o.ok:
            d.healthy.add(ep.subscription_id)
        DELIVERIES.labels(channel=a.channel, outcome=label).inc()
        if o.ok:
            END_TO_END_LATENCY.labels(channel=a.channel).observe(
                max(0.0, (done - a.notification.earliest_observed_at).total_seconds()))
        d.limits.record(a.channel, ep.subscription_id, ok=o.ok, counts=counts,
                        retry_after=o.retry_after)
        (log.info if o.ok else log.warning)(
                "delivery_attempt", key=a.key, channel=a.channel,
                attempt=number, outcome=label, reason=o.reason, status_code=o.status_code,
                provider_code=o.provider_code, latency_s=round(a.latency_s, 4),
                next_attempt_at=nxt.isoformat() if nxt else None, detail=o.detail or None)
        return dataclasses.replace(a, state=after.state, error=after.error, now=done,
                                   attempts_before=number - 1, disabled=after.disabled)

    return stage


def _effects(d: Deps, a: Attempt, verdict: Verdict, number: int, *, provider_sent: bool,
             failed: bool) -> Effects:
    """The endpoint's side of an attempt, run inside the settlement's transaction: the SMS's
    or call's provider id (`provider_sent`), the endpoint's run of failures (`failed`), and
    disabling it."""
    o, ep = a.outcome, a.endpoint
    assert o is not None and ep is not None

    async def effects(conn: AsyncConnection) -> After:
        state, error, disabled_for = verdict.state, verdict.error, None
        if provider_sent:
            track = _track_call if a.channel == "voice" else _track_sms
            late = await track(d, conn, a.key, number, o, verdict.at)
            if late is not None:
                state = State.DEAD if late.dead else State.FAILED
                error = late.error
        elif failed:
            since = await endpoint_store.record_failure(conn, ep.subscription_id, verdict.at,
                                                        error)
            if verdict.at - since >= timedelta(seconds=d.settings.disable_after_s):
                disabled_for = f"failing since {since.isoformat()}"
        if o.action != EndpointAction.NONE:
            disabled_for = disabled_for or o.detail
        if disabled_for is not None:
            reason = f"{o.reason}: {disabled_for}"[:500]
            if o.action == EndpointAction.UNSUBSCRIBE:
                changed = await endpoint_store.opt_out(conn, ep.subscription_id, reason,
                                                       verdict.at)
            else:
                changed = await sub_store.set_status(conn, ep.subscription_id,
                                                     sub_store.DISABLED, verdict.at,
                                                     reason=reason)
            if not changed:
                disabled_for = None
        return After(state, error, disabled_for)

    return effects


async def _track_sms(d: Deps, conn: AsyncConnection, key: str, number: int, o: SendOutcome,
                     done: datetime) -> LateFailure | None:
    """Remember the message SID; if its failure callback overtook us, apply it now."""
    assert o.provider_id is not None
    update = await ledger.record_sms_status(conn, o.provider_id, o.detail or "queued",
                                            o.provider_code, done, notification_key=key,
                                            attempt_no=number)
    if update is None or not update.failed:
        return None
    return await fail_accepted_sms(conn, key, number, update.error_code, done,
                                   max_retry_after_s=d.settings.max_retry_after_s)


async def _track_call(d: Deps, conn: AsyncConnection, key: str, number: int, o: SendOutcome,
                      done: datetime) -> LateFailure | None:
    """Remember the call SID (the callbacks for this key must name it); if the call's end
    overtook us unanswered, apply it now."""
    assert o.provider_id is not None
    update = await ledger.record_call_status(conn, o.provider_id, o.detail or "queued",
                                             o.provider_code, done, notification_key=key,
                                             attempt_no=number)
    if update is None or not update.unanswered:
        return None
    return await fail_accepted_call(conn, key, number, update.status, update.error_code, done)


def announce(d: Deps) -> Stage:
    """After the ledger is settled: the dead-letter record, and the out-of-band notice to the
    tenant when an endpoint was disabled. Failures here are logged, never undo the verdict."""

    async def stage(a: Attempt) -> Attempt | None:
        if a.state == State.DEAD:
            await _dead_letter(d, a)
        if a.disabled and a.endpoint is not None and a.channel == "webhook":
            await _tell_tenant(d, a.endpoint, a.disabled)
        return a

    return stage


async def _dead_letter(d: Deps, a: Attempt) -> None:
    assert a.outcome is not None
    # Errors are "reason: detail"; an SMS failed by callback has an ok send but a bad end.
    reason = a.error.split(":", 1)[0] if a.error else a.outcome.reason
    event = dead_letter_event(a.notification, reason=reason, error=a.error,
                              attempts=a.attempts_before + 1, at=a.now)
    delay = 0.5
    for _ in range(5):
        try:
            await d.bus.publish(d.settings.dlq_topic, a.key, event)
            log.warning("dead_lettered", key=a.key, channel=a.channel, reason=reason)
            return
        except CapmonError as exc:
            if not exc.retriable:
                break
            await d.clock.sleep(delay)
            delay *= 2
    # The ledger still says dead (the source of truth for /v1/notifications and replay).
    log.error("dead_letter_publish_failed", key=a.key, channel=a.channel)


async def _tell_tenant(d: Deps, ep: Endpoint, why: str) -> None:
    # A tenant's admin contact is a mail address: the email channel's notifier carries it.
    notifier = d.notifiers.get("email")
    async with d.store.connect() as conn:
        tenant = await tenant_store.get_tenant(conn, ep.tenant_id)
    outcome = None
    if tenant is not None and tenant.admin_contact and notifier is not None:
        outcome = await notifier.send_endpoint_disabled(tenant.admin_contact, ep, why)
    if outcome is None:
        log.error("endpoint_disabled_unannounced", subscription_id=ep.subscription_id,
                  reason=why)
        return
    log.warning("endpoint_disabled", subscription_id=ep.subscription_id, reason=why,
                tenant_told=outcome.ok)
