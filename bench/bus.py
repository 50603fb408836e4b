"""Bus benchmark: publish-to-consume throughput and latency, embedded bus and Kafka.

Usage: python bench/bus.py [--kafka HOST:PORT] [--n 20000]
(default Kafka address: $CAPMON_TEST_KAFKA; without one, only the embedded bus is measured).

Two figures per bus:
- burst throughput: N condition revisions published in batches while one group member
  consumes and acknowledges them; conditions per second from first publish to last ack;
- latency: 2,000 revisions published one at a time (each awaited: acks=all on Kafka) with a
  consumer running; publish call to handler, p50 and p99.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

from monitor.bus import Bus, MemoryBus
from monitor.config import KafkaSettings
from monitor.envelope import condition_event, condition_from_event
from monitor.events import Condition
from monitor.topics import TopicSpec

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)


def cond(i: int) -> Condition:
    return Condition(id=f"caiso.status:{i % 500}", kind="caiso.status", severity="info",
                     status="active", attributes={"current_demand_mw": 40000.0 + i},
                     revision=i, observed_at=T0)


async def throughput(bus: Bus, n: int) -> float:
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    await bus.ensure_topics([TopicSpec(topic, 6, 3_600_000, "delete")])
    events = [(c.id, condition_event(c, "/bench")) for c in map(cond, range(n))]
    sub = bus.subscribe([topic], f"bench-{uuid.uuid4().hex[:8]}")
    await sub.start()

    async def consumer() -> None:
        got = 0
        while got < n:
            msg = await sub.get(timeout=30)
            if msg is None:
                raise RuntimeError(f"consumer stalled at {got}/{n}")
            condition_from_event(msg.event())
            await sub.ack(msg)
            got += 1

    start = time.perf_counter()
    task = asyncio.create_task(consumer())
    for i in range(0, n, 1000):
        await bus.publish_many(topic, events[i:i + 1000])
    await task
    elapsed = time.perf_counter() - start
    await sub.close()
    return n / elapsed


async def latency(bus: Bus, n: int = 2000) -> tuple[float, float]:
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    await bus.ensure_topics([TopicSpec(topic, 3, 3_600_000, "delete")])
    sub = bus.subscribe([topic], f"bench-{uuid.uuid4().hex[:8]}")
    await sub.start()
    # Let the group settle before timing (the first assignment takes a rebalance on Kafka).
    warm = cond(10**9)
    await bus.publish(topic, warm.id, condition_event(warm, "/bench"))
    first = await sub.get(timeout=60)
    assert first is not None
    await sub.ack(first)
    sent: dict[str, float] = {}
    samples: list[float] = []

    async def consumer() -> None:
        while len(samples) < n:
            msg = await sub.get(timeout=30)
            if msg is None:
                raise RuntimeError("consumer stalled")
            ev = msg.event()
            samples.append(time.perf_counter() - sent[ev.get_id()])
            await sub.ack(msg)

    task = asyncio.create_task(consumer())
    for c in map(cond, range(n)):
        ev = condition_event(c, "/bench")
        sent[ev.get_id()] = time.perf_counter()
        await bus.publish(topic, c.id, ev)
    await task
    await sub.close()
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1000, q[98] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kafka", default=os.environ.get("CAPMON_TEST_KAFKA", ""))
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    buses: list[tuple[str, Bus]] = [("embedded", MemoryBus())]
    if args.kafka:
        from monitor.bus.kafka import KafkaBus

        buses.append(("kafka", KafkaBus(KafkaSettings(bootstrap=args.kafka,
                                                      client_id="capmon-bench"))))
    results: dict[str, float | int] = {"n": args.n}
    rows = []
    for name, bus in buses:
        await bus.start()
        try:
            rate = await throughput(bus, args.n)
            p50, p99 = await latency(bus)
        finally:
            await bus.close()
        results[f"{name}_per_s"] = round(rate, 1)
        results[f"{name}_latency_p50_ms"] = round(p50, 3)
        results[f"{name}_latency_p99_ms"] = round(p99, 3)
        rows.append((name, rate, p50, p99))
    print(f"{'bus':<10} {'throughput/s':>14} {'p50 ms':>10} {'p99 ms':>10}")
    for name, rate, p50, p99 in rows:
        print(f"{name:<10} {rate:>14,.0f} {p50:>10.3f} {p99:>10.3f}")
    print(f"(throughput: {args.n:,} revisions burst, publish to ack; latency: 2,000 awaited "
          "publishes, publish call to handler)")
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
