"""Gauges that describe shared state, refreshed from the store and Kafka when /metrics is scraped.

Conditions by kind and status, notifications by ledger state, the dead-letter count and
consumer lag are facts about the store and the broker, not about one process. The api role
computes them at scrape time (lag at most every `LAG_MIN_INTERVAL_S`), so they are exported
once per API replica and stay right even when the role that changes them is down. The ops
server of the other roles does not register this.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from monitor import ledger
from monitor.api.keys import RUNTIME
from monitor.bus.lag import KafkaLagProbe
from monitor.errors import CapmonError
from monitor.events import Kind, Status
from monitor.metrics import (
    CONDITIONS,
    CONSUMER_LAG,
    DLQ_SIZE,
    GAUGE_REFRESH_ERRORS,
    NOTIFICATION_STATES,
)
from monitor.runtime import Runtime
from monitor.store import conditions
from monitor.topics import TOPIC_SPECS

log = structlog.get_logger(__name__)
LAG_MIN_INTERVAL_S = 15.0


class ScrapeGauges:
    def __init__(self, rt: Runtime, lag_probe: KafkaLagProbe | None) -> None:
        self.rt = rt
        self.lag_probe = lag_probe
        self._lag_at: float | None = None

    async def refresh(self) -> None:
        await self._store_gauges()
        if self.lag_probe is not None:
            now = self.rt.clock.monotonic()
            if self._lag_at is None or now - self._lag_at >= LAG_MIN_INTERVAL_S:
                self._lag_at = now
                await self._lag_gauges(self.lag_probe)

    async def _store_gauges(self) -> None:
        try:
            async with self.rt.store.connect() as conn:
                counts = await conditions.counts_by_kind_status(conn)
                states = await ledger.count_by_state(conn)
        except Exception as exc:  # a scrape must still answer with what the process knows
            GAUGE_REFRESH_ERRORS.labels(what="store").inc()
            log.warning("gauge_refresh_failed", what="store", error=type(exc).__name__)
            return
        # Every kind x status is exported, zeros included, so a series never just vanishes.
        for kind in Kind:
            for status in Status:
                CONDITIONS.labels(kind=kind.value, status=status.value).set(
                    counts.get((kind.value, status.value), 0))
        for state in ledger.State:
            NOTIFICATION_STATES.labels(state=state.value).set(states.get(state, 0))
        DLQ_SIZE.set(states.get(ledger.State.DEAD, 0))

    async def _lag_gauges(self, probe: KafkaLagProbe) -> None:
        try:
            lag = await probe.measure()
        except CapmonError as exc:
            GAUGE_REFRESH_ERRORS.labels(what="lag").inc()
            log.warning("gauge_refresh_failed", what="lag", error=str(exc))
            return
        CONSUMER_LAG.clear()
        for (topic, group), records in lag.items():
            CONSUMER_LAG.labels(topic=topic, group=group).set(records)


SCRAPE = web.AppKey("scrape_gauges", ScrapeGauges)


def setup(app: web.Application) -> None:
    rt = app[RUNTIME]
    probe = (KafkaLagProbe(rt.settings.kafka, [s.name for s in TOPIC_SPECS])
             if rt.settings.uses_kafka else None)
    app[SCRAPE] = ScrapeGauges(rt, probe)

    async def close_probe(_app: web.Application) -> None:
        if probe is not None:
            await probe.close()

    app.on_cleanup.append(close_probe)
