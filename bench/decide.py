"""Decide benchmarks: subscription matching time per revision against 10,000 and 100,000
subscriptions (p50/p99), and decide throughput (revisions/s) end to end on the embedded bus
and on Kafka (when CAPMON_TEST_KAFKA or CAPMON_KAFKA_BOOTSTRAP names a broker).

    python bench/decide.py [--revisions 300] [--subscriptions 1000]

Prints a table, then one JSON object of the figures as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumers.decide.decider import DecideConfig, Decider, decode
from consumers.decide.index import SubscriptionIndex
from monitor.attributes import DrEventAttributes, NoticeAttributes
from monitor.bus import Bus, MemoryBus
from monitor.bus.base import Message
from monitor.bus.runner import consume
from monitor.clock import ManualClock
from monitor.config import KafkaSettings
from monitor.envelope import condition_event
from monitor.events import Condition, Kind, Severity, Status
from monitor.logging import configure_logging
from monitor.store import Store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.store.subscriptions import StoredSubscription
from monitor.subscriptions import SubscriptionSpec
from monitor.topics import TopicSpec

NOW = datetime(2022, 9, 6, 23, 0, tzinfo=UTC)
REGIONS = ["CAISO Grid", "Southern CA Region", "Northern CA Region", "SCE-TAC", "PGE-TAC",
           "SCEC", "SCEN", "SCEW", "SCHD", "SCLD", "SCNW", *[f"9{n:04d}" for n in range(200)]]
KINDS = [Kind.CAISO_EEA, Kind.CAISO_FLEX_ALERT, Kind.CAISO_RMO, Kind.SCE_DR_EVENT,
         Kind.CAISO_TRANSMISSION_EMERGENCY, Kind.SOURCE_HEALTH]
PROGRAMS = ["CPP", "BIP", "SDP", "ELRP", "SEP", "AP-I"]


def spec(rng: random.Random, i: int) -> dict[str, object]:
    return {
        "name": f"sub {i}", "channel": {"type": "sms", "phone": "+14155550100"},
        "match": {"kinds": rng.sample([k.value for k in KINDS], rng.randint(1, 3)),
                  "min_severity": rng.choice(list(Severity)).value,
                  "regions": rng.sample(REGIONS, rng.choice([0, 1, 2, 3])),
                  "programs": rng.sample(PROGRAMS, rng.choice([0, 0, 1, 2]))},
        "transitions": ["issued", "updated", "started", "ended", "cancelled"],
    }


def stored(rng: random.Random, n: int) -> list[StoredSubscription]:
    return [StoredSubscription(id=str(uuid.UUID(int=rng.getrandbits(128))), tenant_id="t",
                               spec=SubscriptionSpec.model_validate(spec(rng, i)),
                               status_reason=None, created_at=NOW, updated_at=NOW)
            for i in range(n)]


def revision(rng: random.Random, i: int, rev: int = 1) -> Condition:
    kind = rng.choice([Kind.CAISO_EEA, Kind.CAISO_FLEX_ALERT, Kind.SCE_DR_EVENT,
                       Kind.CAISO_TRANSMISSION_EMERGENCY])
    start = NOW + timedelta(hours=rng.randint(1, 20))
    attrs: NoticeAttributes | DrEventAttributes
    if kind == Kind.SCE_DR_EVENT:
        regions: tuple[str, ...] = tuple(rng.sample(REGIONS[5:11], 2))
        attrs = DrEventAttributes(program=rng.choice(PROGRAMS), sublaps=regions)
        severity = Severity.WARNING
    else:
        regions = (rng.choice(REGIONS[:3]),)
        attrs = NoticeAttributes(level=rng.choice(["WATCH", "1", "2", "3"]))
        severity = rng.choice([Severity.WATCH, Severity.WARNING, Severity.EMERGENCY,
                               Severity.CRITICAL])
    return Condition(id=f"bench.c:{i}", kind=kind, severity=severity, status=Status.SCHEDULED,
                     window={"start": start, "end": start + timedelta(hours=rev + 2)},
                     regions=regions, attributes=attrs, revision=rev,
                     observed_at=NOW + timedelta(seconds=rev))


def bench_match(n: int, rng: random.Random) -> dict[str, float]:
    subs = stored(rng, n)
    t0 = time.perf_counter()
    index = SubscriptionIndex(subs)
    build_s = time.perf_counter() - t0
    revisions = [revision(rng, i) for i in range(300)]
    times, matched = [], []
    for _ in range(3):
        for c in revisions:
            t = time.perf_counter()
            out = index.match(c)
            times.append(time.perf_counter() - t)
            matched.append(len(out))
    q = statistics.quantiles(times, n=100)
    return {"subscriptions": n, "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
            "mean_matched": statistics.mean(matched), "index_build_s": build_s}


async def bench_throughput(bus: Bus, n_revisions: int, n_subs: int,
                           rng: random.Random) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await store.upgrade()
        async with store.begin() as conn:
            tenant, _ = await tenant_store.create_tenant(conn, "bench", None, NOW)
            for i in range(n_subs):
                await sub_store.create(conn, tenant.id, SubscriptionSpec.model_validate(
                    spec(rng, i)), NOW)
        topic = f"capmon.bench.{uuid.uuid4().hex[:8]}"
        await bus.ensure_topics([TopicSpec(topic, 6, 3_600_000, "delete"),
                                 TopicSpec(f"{topic}.n", 6, 3_600_000, "delete")])
        clock = ManualClock(NOW)
        config = DecideConfig(condition_topics=(topic,), notifications_topic=f"{topic}.n",
                              group=f"{topic}.decide")
        decider = Decider(store, bus, clock, config)
        await decider.refresh_index(force=True)
        # Half new conditions, half second revisions of them (an `updated` each).
        half = n_revisions // 2
        revisions = [revision(rng, i) for i in range(half)]
        revisions += [Condition.model_validate({
            **r.model_dump(), "revision": 2,
            "window": {"start": r.window.start, "end": (r.window.end or NOW) + timedelta(hours=1)}})
            for r in revisions]
        done = asyncio.Event()
        handled = 0

        async def handler(message: Message) -> None:
            nonlocal handled
            await decider.handle(decode(message))
            handled += 1
            if handled == len(revisions):
                done.set()

        stop = asyncio.Event()
        task = asyncio.create_task(consume(bus, config.condition_topics, config.group,
                                           handler, stop, clock, dead_letters=f"{topic}.dlq",
                                           poll_timeout_s=0.05))
        t0 = time.perf_counter()
        await bus.publish_many(topic, [(c.id, condition_event(c, "/bench")) for c in revisions])
        await asyncio.wait_for(done.wait(), timeout=600)
        elapsed = time.perf_counter() - t0
        stop.set()
        await task
        await store.close()
    return {"revisions": len(revisions), "subscriptions": n_subs, "seconds": elapsed,
            "revisions_per_s": len(revisions) / elapsed}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument("--subscriptions", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("warning", "console")
    rng = random.Random(20220906)
    figures: dict[str, object] = {}
    print(f"{'match':<10}{'subs':>8}{'p50 ms':>10}{'p99 ms':>10}{'matched':>10}{'build s':>10}")
    for n in (10_000, 100_000):
        m = bench_match(n, rng)
        figures[f"match_{n}"] = m
        print(f"{'index':<10}{n:>8}{m['p50_ms']:>10.3f}{m['p99_ms']:>10.3f}"
              f"{m['mean_matched']:>10.0f}{m['index_build_s']:>10.2f}")
    print(f"\n{'decide':<10}{'bus':>8}{'revs':>10}{'subs':>10}{'rev/s':>10}")
    buses: list[tuple[str, Bus]] = [("memory", MemoryBus())]
    bootstrap = os.environ.get("CAPMON_TEST_KAFKA") or os.environ.get("CAPMON_KAFKA_BOOTSTRAP")
    if bootstrap:
        from monitor.bus.kafka import KafkaBus

        buses.append(("kafka", KafkaBus(KafkaSettings(bootstrap=bootstrap,
                                                      client_id="capmon-bench"))))
    for name, bus in buses:
        await bus.start()
        t = await bench_throughput(bus, args.revisions, args.subscriptions, rng)
        await bus.close()
        figures[f"throughput_{name}"] = t
        print(f"{'e2e':<10}{name:>8}{t['revisions']:>10}{t['subscriptions']:>10}"
              f"{t['revisions_per_s']:>10.1f}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
