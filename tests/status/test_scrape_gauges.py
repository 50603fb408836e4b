"""Store- and broker-derived gauges, refreshed when the API's /metrics is scraped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from monitor.bus.kafka import KafkaBus
from monitor.bus.lag import KafkaLagProbe
from monitor.config import KafkaSettings
from monitor.envelope import make_event
from monitor.store import Store, conditions
from monitor.topics import TopicSpec
from tests import ledger_states
from tests.status import heatwave as hw


def sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not exported")


async def test_conditions_and_ledger_gauges_follow_the_store(
        client: TestClient[Any, Any], store: Store) -> None:
    empty = await (await client.get("/metrics")).text()
    assert sample(empty, 'capmon_conditions{kind="caiso.eea",status="active"}') == 0
    assert sample(empty, "capmon_delivery_dead_letters") == 0
    items = hw.heatwave_conditions()
    eea3 = next(c for c in items if c.id == "caiso.notice:202202696")
    async with store.begin() as conn:
        for c in items:
            await conditions.record(conn, c, hw.NOW)
        for i, state in enumerate(("dead", "dead", "delivered")):
            n = hw.notification(f"{i:02d}" + "c" * 30, eea3)
            await ledger_states.put(conn, n, state, hw.NOW)
    text = await (await client.get("/metrics")).text()
    assert sample(text, 'capmon_conditions{kind="caiso.eea",status="active"}') == 2
    assert sample(text, 'capmon_conditions{kind="caiso.eea",status="scheduled"}') == 1
    assert sample(text, 'capmon_conditions{kind="caiso.eea",status="ended"}') == 1
    assert sample(text, 'capmon_conditions{kind="sce.dr_event",status="active"}') == 1
    assert sample(text, 'capmon_notifications{state="dead"}') == 2
    assert sample(text, 'capmon_notifications{state="delivered"}') == 1
    assert sample(text, "capmon_delivery_dead_letters") == 2


async def test_consumer_lag_of_a_group_on_real_kafka(
        kafka_settings: KafkaSettings, unique: Callable[[str], str]) -> None:
    bus = KafkaBus(kafka_settings)
    await bus.start()
    topic, group = unique("capmon.lagtest"), unique("capmon-lagtest")
    probe = KafkaLagProbe(kafka_settings, [topic], group_prefix=group)
    try:
        await bus.ensure_topics([TopicSpec(topic, 1, 3_600_000, "delete")])
        events = [(f"k{i}", make_event(event_id=f"e{i}", source="/test", type_="capmon.test.v1",
                                       subject=f"k{i}", time=hw.NOW, data={"i": i}))
                  for i in range(5)]
        await bus.publish_many(topic, events)
        sub = bus.subscribe([topic], group)
        for _ in range(2):
            msg = await sub.get(timeout=30)
            assert msg is not None
            await sub.ack(msg)
        await sub.close()  # commits the two acknowledged offsets
        assert await probe.measure() == {(topic, group): 3}
    finally:
        await probe.close()
        await bus.close()
