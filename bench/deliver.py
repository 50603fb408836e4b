"""Webhook fan-out benchmark: 10,000 signed deliveries to a local receiver.

Measures capmon's webhook notifier (CloudEvent body, Standard Webhooks signature, SSRF guard,
verdict) against the ceiling on this machine: a bare aiohttp client posting the same 10,000
signed bodies to the same receiver with the same concurrency. The receiver runs in its own
process so it does not share the event loop being measured. It also times the whole deliver
pipeline (ledger on SQLite: admit in one transaction as decide does, then claim, send,
record per notification) on a smaller batch, for scale.

    python bench/deliver.py [--n 10000] [--endpoints 100] [--concurrency 64] [--pipeline 2000]

Prints a table, then one JSON line: deliveries_per_s, ceiling_per_s, ratio_to_ceiling,
attempt latency p50/p99 (ms), pipeline_per_s, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.deliver.deliverer import Deliverer
from consumers.deliver.ledger import DeliverLedger
from consumers.deliver.limits import Limits
from consumers.deliver.stages import Deps
from consumers.notifiers.base import Delivery
from consumers.notifiers.webhook import (
    WebhookConfig,
    WebhookNotifier,
    signed_headers,
    webhook_body,
)
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import SystemClock
from monitor.collector import settle_after_start
from monitor.config import DeliverSettings
from monitor.logging import configure_logging
from monitor.store import Store
from monitor.store.endpoints import Endpoint
from tests.deliver.helpers import (
    add_subscription,
    add_tenant,
    new_secret,
    notification,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(port: int, ready: Any) -> None:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{name}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def run_notifier(items: list[Delivery], notifier: WebhookNotifier,
                       concurrency: int) -> tuple[float, list[float]]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(d: Delivery) -> None:
        async with sem:
            t0 = time.perf_counter()
            outcome = await notifier.send(d)
            latencies.append(time.perf_counter() - t0)
            assert outcome.ok, outcome

    t0 = time.perf_counter()
    await asyncio.gather(*(one(d) for d in items))
    return time.perf_counter() - t0, latencies


async def run_ceiling(requests: list[tuple[str, bytes, dict[str, str]]],
                      concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256,
                                                                    limit_per_host=32)) as s:
        async def one(url: str, body: bytes, headers: dict[str, str]) -> None:
            async with sem, s.post(url, data=body, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200

        t0 = time.perf_counter()
        await asyncio.gather(*(one(*r) for r in requests))
        return time.perf_counter() - t0


async def run_pipeline(base: str, n: int, endpoints: int, concurrency: int) -> float:
    clock = SystemClock()
    now = clock.now()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await store.upgrade()
        tenant, _ = await add_tenant(store, now)
        subs = []
        for i in range(endpoints):
            secret = new_secret()
            url = f"{base}/ep{i}"
            subs.append((await add_subscription(store, tenant, "webhook", url, now,
                                                secret=secret), url))
        ns = [notification(tenant, sid, "webhook", url, n=i, decided_at=now)
              for i in range(n // endpoints) for sid, url in subs]
        settings = DeliverSettings(concurrency=concurrency)
        notifier = WebhookNotifier(WebhookConfig(allow_hosts=("127.0.0.1",), allow_http=True),
                                   clock)
        await notifier.start()
        bus = MemoryBus()
        await bus.start()
        d = Deliverer(Deps(settings=settings, store=store, bus=bus, clock=clock,
                           notifiers={"webhook": notifier}, limits=Limits(settings, clock),
                           ledger=DeliverLedger(store, clock, settings.claim_lease_s,
                                                linger_s=settings.commit_linger_s)))
        # Notifications in hand as the bus consumer would hold them (`inflight`); sends are
        # capped at `concurrency` inside the pipeline, as in the ceiling's client.
        sem = asyncio.Semaphore(settings.inflight)

        async def one(x: object) -> None:
            async with sem:
                await d.submit(x)  # type: ignore[arg-type]

        t0 = time.perf_counter()
        # As decide does: the whole batch admitted in one transaction (the outbox), then
        # each notification handed to deliver as its bus record would be.
        async with store.begin() as conn:
            await ledger.admit(conn, ns, clock.now())
        await asyncio.gather(*(one(x) for x in ns))
        elapsed = time.perf_counter() - t0
        await notifier.close()
        await bus.close()
        await store.close()
        return len(ns) / elapsed


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


async def main(args: argparse.Namespace) -> dict[str, float]:
    configure_logging("error", "json")
    port = _free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    if not ready.wait(30):
        raise SystemExit("receiver did not start")
    base = f"http://127.0.0.1:{port}"
    clock = SystemClock()
    now = datetime.now(UTC)
    rng = random.Random(1)
    endpoints = [Endpoint(subscription_id=f"sub-{i:04d}", tenant_id="t", name=f"ep{i}",
                          channel_type="webhook", target=f"{base}/ep{i}",
                          secrets=(new_secret(),), status="active", status_reason=None)
                 for i in range(args.endpoints)]
    items = []
    for i in range(args.n):
        ep = endpoints[i % len(endpoints)]
        n = notification("t", ep.subscription_id, "webhook", ep.target, n=i, decided_at=now)
        items.append(Delivery(n, ep, 1, now))
    rng.shuffle(items)
    # The ceiling posts exactly what capmon would send: the same bodies, signed the same way.
    ts = int(now.timestamp())
    requests = [(d.endpoint.target, body := webhook_body(d.notification),
                 signed_headers(d.endpoint.secrets, d.notification.key, ts, body))
                for d in items]

    notifier = WebhookNotifier(WebhookConfig(allow_hosts=("127.0.0.1",), allow_http=True,
                                             max_connections=256), clock)
    await notifier.start()
    settle_after_start()  # as a capmon process does once it has built what it keeps
    # Warm both paths (connection pools, caches), then measure each twice, keep the best.
    await run_ceiling(requests[:500], args.concurrency)
    await run_notifier(items[:500], notifier, args.concurrency)
    ceiling = min([await run_ceiling(requests, args.concurrency) for _ in range(2)])
    runs = [await run_notifier(items, notifier, args.concurrency) for _ in range(2)]
    elapsed, latencies = min(runs, key=lambda r: r[0])
    await notifier.close()
    pipeline = await run_pipeline(base, args.pipeline, min(args.endpoints, 50),
                                  args.concurrency) if args.pipeline else 0.0
    server.terminate()
    server.join()
    return {
        "deliveries": args.n,
        "endpoints": args.endpoints,
        "concurrency": args.concurrency,
        "deliveries_per_s": round(args.n / elapsed, 1),
        "ceiling_per_s": round(args.n / ceiling, 1),
        "ratio_to_ceiling": round(ceiling / elapsed, 3),
        "attempt_latency_p50_ms": round(_pct(latencies, 50), 2),
        "attempt_latency_p99_ms": round(_pct(latencies, 99), 2),
        "pipeline_deliveries": args.pipeline,
        "pipeline_per_s": round(pipeline, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pipeline", type=int, default=2_000,
                        help="notifications through the full ledger pipeline (0 to skip)")
    result = asyncio.run(main(parser.parse_args()))
    rows = [
        ("signed webhook deliveries", f"{result['deliveries']:,} to {result['endpoints']} "
                                      f"endpoints, concurrency {result['concurrency']}"),
        ("capmon notifier", f"{result['deliveries_per_s']:,.0f} deliveries/s"),
        ("bare aiohttp ceiling", f"{result['ceiling_per_s']:,.0f} posts/s"),
        ("ratio to ceiling", f"{result['ratio_to_ceiling']:.2f}"),
        ("attempt latency p50 / p99", f"{result['attempt_latency_p50_ms']:.1f} ms / "
                                      f"{result['attempt_latency_p99_ms']:.1f} ms"),
        ("full pipeline (SQLite ledger)", f"{result['pipeline_per_s']:,.0f} deliveries/s "
                                          f"({result['pipeline_deliveries']:,})"),
        ("peak RSS", f"{result['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(result))
