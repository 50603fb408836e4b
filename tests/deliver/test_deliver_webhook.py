"""Webhook delivery end to end through the deliver pipeline, against a real local receiver
that checks every request with the `standardwebhooks` reference library.

Each receiver answer pins its retry verdict and schedule: 200 delivered; 500 retried after
~5 s; 429/503 retried after exactly their Retry-After; 410 dead and the endpoint disabled;
a redirect is a failure that is never followed; a hang is a timeout, retried.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from consumers.notifiers.webhook import WebhookConfig, WebhookNotifier
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.store import Store
from monitor.store.schema import subscriptions
from tests.deliver.conftest import make_deliverer, webhook_notifier
from tests.deliver.helpers import add_subscription, add_tenant, new_secret, notification
from tests.deliver.receivers import WebhookReceiver


def aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


async def setup_endpoint(store: Store, receiver: WebhookReceiver, clock: ManualClock,
                         path: str, *, secrets: list[str] | None = None,
                         admin: str | None = None) -> tuple[str, str, str]:
    secrets = secrets or [new_secret()]
    tenant_id, _ = await add_tenant(store, clock.now(), admin)
    url = receiver.url(path, secrets)
    sub_id = await add_subscription(store, tenant_id, "webhook", url, clock.now(),
                                    secret=secrets[0],
                                    previous_secret=secrets[1] if len(secrets) > 1 else None)
    return tenant_id, sub_id, url


async def entry(store: Store, key: str) -> ledger.LedgerEntry:
    async with store.connect() as conn:
        e = await ledger.get(conn, key)
    assert e is not None
    return e


async def attempts(store: Store, key: str) -> list[dict[str, object]]:
    async with store.connect() as conn:
        return await ledger.attempts_for(conn, key)


async def sub_status(store: Store, sub_id: str) -> tuple[str, str | None]:
    async with store.connect() as conn:
        row = (await conn.execute(sa.select(subscriptions.c.status, subscriptions.c.status_reason)
                                  .where(subscriptions.c.id == sub_id))).one()
    return row[0], row[1]


async def test_delivered_with_standard_webhooks_signature_and_cloudevent_body(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/ok")
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)})
    n = notification(tenant_id, sub_id, "webhook", url)
    await d.submit(n)

    [got] = receiver.on("/ok")
    assert got.verified == [True]
    assert got.webhook_id == n.key
    assert got.headers["webhook-timestamp"] == str(int(wall_clock.now().timestamp()))
    assert got.headers["content-type"].startswith("application/cloudevents+json")
    event = json.loads(got.body)
    assert event["specversion"] == "1.0" and event["id"] == n.key
    assert event["type"] == "capmon.notification.v1"
    assert event["data"]["summary"] == n.summary
    assert event["data"]["items"][0]["condition"]["id"] == "caiso.notice:202202696"
    e = await entry(store, n.key)
    assert (e.state, e.attempt_count, e.next_attempt_at) == ("delivered", 1, None)
    [a] = await attempts(store, n.key)
    assert (a["outcome"], a["status_code"], a["channel"]) == ("delivered", 200, "webhook")
    assert a["latency_s"] is not None


async def test_rotation_signs_with_both_secrets(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    new, old = new_secret(), new_secret()
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/ok",
                                                  secrets=[new, old])
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)})
    await d.submit(notification(tenant_id, sub_id, "webhook", url))
    [got] = receiver.on("/ok")
    # A receiver holding only the old secret and one holding only the new both verify.
    assert got.verified == [True, True]
    assert len(got.headers["webhook-signature"].split(" ")) == 2


async def test_expired_previous_secret_is_dropped(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    new, old = new_secret(), new_secret()
    tenant_id, _ = await add_tenant(store, wall_clock.now())
    url = receiver.url("/ok", [new, old])
    sub_id = await add_subscription(store, tenant_id, "webhook", url, wall_clock.now(),
                                    secret=new, previous_secret=old,
                                    previous_expires=wall_clock.now() - timedelta(seconds=1))
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)})
    await d.submit(notification(tenant_id, sub_id, "webhook", url))
    [got] = receiver.on("/ok")
    assert got.verified == [True, False]


@pytest.mark.parametrize(("path", "state", "outcome", "status", "reason", "delay"), [
    ("/fail", "failed", "retry", 500, "server", (4.0, 6.0)),
    ("/throttle", "failed", "retry", 429, "rate_limited", (120.0, 120.0)),
    ("/unavailable", "failed", "retry", 503, "server", (30.0, 30.0)),
    ("/redirect", "failed", "retry", 302, "redirect", (4.0, 6.0)),
    ("/hang", "failed", "retry", None, "timeout", (4.0, 6.0)),
    ("/gone", "dead", "failed", 410, "gone", None),
    ("/abort", "dead", "failed", 500, "aborted", None),
])
async def test_retry_verdict_per_answer(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver, wall_clock: ManualClock,
        path: str, state: str, outcome: str, status: int | None, reason: str,
        delay: tuple[float, float] | None) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, path)
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)})
    n = notification(tenant_id, sub_id, "webhook", url)
    await d.submit(n)

    assert [r.verified for r in receiver.on(path)] == [[True]]
    assert receiver.on("/ok") == []  # the redirect was not followed
    e = await entry(store, n.key)
    assert e.state == state
    [a] = await attempts(store, n.key)
    assert (a["outcome"], a["status_code"], a["provider_error"]) == (outcome, status, reason)
    if delay is None:
        assert e.next_attempt_at is None
    else:
        wait = (aware(e.next_attempt_at) - wall_clock.now()).total_seconds()  # type: ignore[operator]
        assert delay[0] <= wait <= delay[1]


async def test_410_disables_endpoint_dead_letters_and_stops(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/gone")
    dlq = memory_bus.subscribe(["capmon.notifications.dlq.v1"], "test-dlq")
    await dlq.start()
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)})
    first = notification(tenant_id, sub_id, "webhook", url, n=1)
    await d.submit(first)

    status, reason = await sub_status(store, sub_id)
    assert status == "disabled" and reason is not None and "gone" in reason
    msg = await dlq.get(timeout=5)
    assert msg is not None and msg.key == first.key
    data = msg.event().get_data()
    assert isinstance(data, dict) and data["reason"] == "gone" and data["attempts"] == 1
    # Later notifications for the disabled endpoint are not sent at all.
    second = notification(tenant_id, sub_id, "webhook", url, n=2)
    await d.submit(second)
    assert len(receiver.on("/gone")) == 1
    assert (await entry(store, second.key)).state == "suppressed"


async def test_full_svix_schedule_then_dead_then_replay(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/fail")
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)},
                             circuit_failure_threshold=100)
    n = notification(tenant_id, sub_id, "webhook", url)
    await d.submit(n)
    gaps = []
    for _ in range(7):
        e = await entry(store, n.key)
        due = aware(e.next_attempt_at)
        assert due is not None
        # Not a moment early: the scheduler leaves it alone until it is due.
        wall_clock.set(due - timedelta(seconds=1))
        assert await d.run_due() == 0
        wall_clock.set(due)
        before = wall_clock.now()
        assert await d.run_due() == 1
        gaps.append((before - aware(e.updated_at)).total_seconds())  # type: ignore[operator]
    expected = (5, 300, 1800, 7200, 18000, 36000, 36000)
    for gap, base in zip(gaps, expected, strict=True):
        assert base * 0.8 <= gap <= base * 1.2
    e = await entry(store, n.key)
    assert (e.state, e.attempt_count, e.next_attempt_at) == ("dead", 8, None)
    assert [a["outcome"] for a in await attempts(store, n.key)] == ["retry"] * 7 + ["exhausted"]
    assert len(receiver.on("/fail")) == 8
    assert all(r.webhook_id == n.key for r in receiver.on("/fail"))

    # Replay after the receiver is fixed: same webhook-id, a fresh schedule.
    receiver.mode["/fail"] = 200
    async with store.begin() as conn:
        assert await ledger.reopen(conn, n.key, wall_clock.now(), tenant_id=tenant_id)
    assert await d.run_due() == 1
    e = await entry(store, n.key)
    assert (e.state, e.attempt_count) == ("delivered", 9)
    assert receiver.on("/fail")[-1].webhook_id == n.key


async def test_restart_keeps_the_persisted_schedule(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/fail")
    first = await make_deliverer(store, memory_bus, wall_clock,
                                 {"webhook": webhook_notifier(wall_clock)})
    n = notification(tenant_id, sub_id, "webhook", url)
    await first.submit(n)
    due = aware((await entry(store, n.key)).next_attempt_at)
    assert due is not None
    # A new process: nothing in memory, only the store.
    receiver.mode["/fail"] = 200
    second = await make_deliverer(store, memory_bus, wall_clock,
                                  {"webhook": webhook_notifier(wall_clock)})
    assert await second.run_due() == 0
    wall_clock.set(due)
    assert await second.run_due() == 1
    assert (await entry(store, n.key)).state == "delivered"
    # A redelivered bus record of the settled key is a no-op.
    await second.submit(n)
    assert len(receiver.on("/fail")) == 2


async def test_circuit_opens_after_threshold_and_defers_without_sending(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/fail")
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)},
                             circuit_failure_threshold=3, circuit_cooldown_s=60)
    ns = [notification(tenant_id, sub_id, "webhook", url, n=i) for i in range(4)]
    for n in ns:
        await d.submit(n)
    assert len(receiver.on("/fail")) == 3
    deferred = await entry(store, ns[3].key)
    assert (deferred.state, deferred.attempt_count) == ("pending", 0)
    wait = (aware(deferred.next_attempt_at) - wall_clock.now()).total_seconds()  # type: ignore[operator]
    assert 60 <= wait <= 72
    # Half-open after the cooldown: one probe at a time until one succeeds and closes the
    # circuit; whatever found a probe in flight is deferred a moment and follows.
    receiver.mode["/fail"] = 200
    wall_clock.advance(wait)
    assert await d.run_due() == 4
    for _ in range(5):
        wall_clock.advance(2)
        await d.run_due()
    async with store.connect() as conn:
        states = {(await ledger.get(conn, n.key)).state for n in ns}  # type: ignore[union-attr]
    assert states == {"delivered"}
    assert len(receiver.on("/fail")) == 7


async def test_endpoint_rate_limit_defers_beyond_the_burst(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/ok")
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)},
                             endpoint_rate_per_s=0.5, endpoint_burst=2, max_rate_wait_s=0)
    ns = [notification(tenant_id, sub_id, "webhook", url, n=i) for i in range(3)]
    for n in ns:
        await d.submit(n)
    assert len(receiver.on("/ok")) == 2
    third = await entry(store, ns[2].key)
    assert third.state == "pending"
    wait = (aware(third.next_attempt_at) - wall_clock.now()).total_seconds()  # type: ignore[operator]
    assert 2.0 <= wait <= 2.5  # one token every 2 s
    wall_clock.advance(wait)
    assert await d.run_due() == 1
    assert len(receiver.on("/ok")) == 3


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/ok", "http://localhost:{port}/ok",
                                    "http://[::ffff:127.0.0.1]:{port}/ok"])
async def test_ssrf_guard_refuses_private_targets_at_connect_time(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock, target: str) -> None:
    port = receiver.base.rsplit(":", 1)[1]
    tenant_id, _ = await add_tenant(store, wall_clock.now())
    url = target.format(port=port)
    sub_id = await add_subscription(store, tenant_id, "webhook", url, wall_clock.now(),
                                    secret=new_secret())
    guarded = WebhookNotifier(WebhookConfig(timeout_s=1, allow_http=True), wall_clock)
    d = await make_deliverer(store, memory_bus, wall_clock, {"webhook": guarded})
    n = notification(tenant_id, sub_id, "webhook", url)
    await d.submit(n)
    assert receiver.received == []
    assert (await entry(store, n.key)).state == "dead"
    [a] = await attempts(store, n.key)
    assert a["provider_error"] == "forbidden_address"


async def test_endpoint_failing_for_days_is_disabled_and_tenant_emailed(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock, smtp: tuple[object, int]) -> None:
    from tests.deliver.conftest import email_notifier
    handler, port = smtp
    tenant_id, sub_id, url = await setup_endpoint(store, receiver, wall_clock, "/fail",
                                                  admin="ops@cca.example")
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock),
                              "email": email_notifier(wall_clock, port)},
                             circuit_failure_threshold=100, disable_after_s=3 * 3600)
    n = notification(tenant_id, sub_id, "webhook", url)
    await d.submit(n)
    while (await sub_status(store, sub_id))[0] == "active":
        e = await entry(store, n.key)
        assert e.state == "failed", "ran out of attempts before the endpoint was disabled"
        wall_clock.set(aware(e.next_attempt_at))  # type: ignore[arg-type]
        await d.run_due()
    status, reason = await sub_status(store, sub_id)
    assert status == "disabled" and reason is not None and "failing since" in reason
    # Attempts 1-5 fall within ~2.6 h (5 s + 5 min + 30 min + 2 h); the 6th (+5 h) is the
    # first past 3 h of continuous failure, and it disables the endpoint.
    assert len(receiver.on("/fail")) == 6
    [mail] = handler.messages  # type: ignore[attr-defined]
    assert mail["To"] == "ops@cca.example"
    assert "disabled" in mail["Subject"] and sub_id in mail.get_content()
    assert f"URL: {url}" in mail.get_content() and "failing since" in mail.get_content()
    assert mail["Auto-Submitted"] == "auto-generated"
