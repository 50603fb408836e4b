"""Crash safety on the real Kafka broker and PostgreSQL: kill -9 a `capmon deliver` process
in the middle of a burst of 5,000 notifications, start it again, and every notification is
delivered. A receiver sees a notification twice only if its send was in flight at the kill
(the ledger had claimed it but not settled it), and then under the same webhook-id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor import ledger
from monitor.bus.kafka import KafkaBus
from monitor.config import KafkaSettings
from monitor.notifications import notification_record
from monitor.store import Store
from monitor.store.schema import notifications
from monitor.topics import TopicSpec
from tests.deliver.helpers import add_subscription, add_tenant, new_secret, notification
from tests.deliver.receivers import WebhookReceiver

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

TOTAL = 5_000
ENDPOINTS = 50
CONCURRENCY = 32
ROOT = Path(__file__).parents[2]


def deliver_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "capmon.cli", "deliver"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_kill_9_mid_burst_loses_nothing_and_duplicates_only_in_flight(
        pg_url: str, kafka_settings: KafkaSettings, unique: Callable[[str], str],
        receiver: WebhookReceiver, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = Store(pg_url)
    await store.upgrade()
    tenant_id, _ = await add_tenant(store, now)
    secrets, subs = [], []
    for i in range(ENDPOINTS):
        secret = new_secret()
        url = receiver.url(f"/ep{i}", secret)
        subs.append((await add_subscription(store, tenant_id, "webhook", url, now,
                                            secret=secret), url))
        secrets.append(secret)
    topic, dlq = unique("capmon.test.notifications"), unique("capmon.test.dlq")
    bus = KafkaBus(kafka_settings)
    await bus.start()
    await bus.ensure_topics([TopicSpec(topic, 12, 3_600_000, "delete"),
                             TopicSpec(dlq, 1, 3_600_000, "delete")])
    ns = [notification(tenant_id, sub_id, "webhook", url, n=i, decided_at=now)
          for i in range(TOTAL // ENDPOINTS) for sub_id, url in subs]
    await bus.publish_records(topic, [notification_record(n) for n in ns])
    await bus.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    env.update({
        "CAPMON_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "CAPMON_KAFKA_SESSION_TIMEOUT_MS": "6000", "CAPMON_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "CAPMON_KAFKA_COMMIT_INTERVAL_S": "0.05",
        "CAPMON_STORE_URL": pg_url,
        "CAPMON_DELIVER_TOPIC": topic, "CAPMON_DELIVER_DLQ_TOPIC": dlq,
        "CAPMON_DELIVER_GROUP": unique("capmon-deliver"),
        "CAPMON_DELIVER_CONCURRENCY": str(CONCURRENCY),
        # A dead sender's claims come back after 4 s; a send can't outlive its 2 s timeout.
        "CAPMON_DELIVER_CLAIM_LEASE_S": "4", "CAPMON_WEBHOOK_TIMEOUT_S": "2",
        "CAPMON_DELIVER_SCHEDULER_INTERVAL_S": "0.5",
        "CAPMON_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]', "CAPMON_WEBHOOK_ALLOW_HTTP": "true",
        "CAPMON_LOG_FORMAT": "json", "CAPMON_LOG_LEVEL": "info",
    })
    log = tmp_path / "deliver.log"

    def distinct() -> int:
        return len(receiver.ids)

    first = deliver_process(env, log)
    try:
        await receiver.wait_for(lambda: distinct() >= 1_500, timeout=90)
        first.send_signal(signal.SIGKILL)
        await asyncio.get_running_loop().run_in_executor(None, first.wait)
        seen_at_kill = Counter(r.webhook_id for r in receiver.received)
        assert distinct() < TOTAL, "the burst was over before the kill"

        second = deliver_process(env, log)
        try:
            await receiver.wait_for(lambda: distinct() >= TOTAL, timeout=120)
            # Let the second process settle what it sent, then stop it cleanly.
            await _wait_settled(store, timeout=30)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.get_running_loop().run_in_executor(None, second.wait)
        assert second.returncode == 0
    finally:
        if first.poll() is None:
            first.kill()

    counts = Counter(r.webhook_id for r in receiver.received)
    assert set(counts) == {n.key for n in ns}
    assert all(r.verified == [True] for r in receiver.received)
    # Every duplicate was a send in flight at the kill: received once by then, at most twice
    # in all, and no more of them than the process had sends in flight.
    dupes = {k for k, c in counts.items() if c > 1}
    assert all(counts[k] == 2 for k in dupes)
    assert dupes <= set(seen_at_kill)
    assert len(dupes) <= CONCURRENCY
    async with store.connect() as conn:
        assert await ledger.count_by_state(conn) == {"delivered": TOTAL}
        attempts = (await conn.execute(sa.select(sa.func.sum(notifications.c.attempt_count))
                                       )).scalar_one()
    assert attempts == TOTAL  # an interrupted send leaves no attempt row: it never finished
    text = log.read_text()
    assert "deliver_started" in text
    for secret in secrets:
        assert secret.removeprefix("whsec_") not in text
    await store.close()


async def _wait_settled(store: Store, timeout: float) -> None:
    async def poll() -> None:
        while True:
            async with store.connect() as conn:
                states = await ledger.count_by_state(conn)
            if states == {"delivered": TOTAL}:
                return
            await asyncio.sleep(0.2)
    await asyncio.wait_for(poll(), timeout)
