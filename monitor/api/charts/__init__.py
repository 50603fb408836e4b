"""The status page's charts: today's demand, tomorrow's peaks against tenants' thresholds,
the seven-day RA margin, and the notices and DR events around now.

`load_charts` reads what they plot from the store (`series` shapes it, `render` draws it);
the page places the returned charts in its template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.api.charts.render import (
    Chart,
    demand_chart,
    margins_chart,
    peaks_chart,
    timeline_chart,
)
from monitor.api.charts.series import (
    ThresholdLevel,
    area_peaks,
    demand_series,
    margin_days,
    threshold_levels,
    timeline,
)
from monitor.api.status_view import NOTICE_KINDS
from monitor.clock import PACIFIC
from monitor.events import Condition, Kind
from monitor.runtime import Runtime
from monitor.store import conditions, subscriptions

__all__ = ["THRESHOLDS", "Chart", "ThresholdCache", "build_charts", "load_charts"]

# Forecasts and RA outlooks are published daily; three days back covers a missed publication.
_DAILY_LOOKBACK = timedelta(days=3)


@dataclass
class ThresholdCache:
    """The tenants' peak-forecast levels, read again only when a subscription changed: the
    public page must not parse every subscription on every refresh."""

    version: tuple[int, str] | None = None
    levels: list[ThresholdLevel] = field(default_factory=list)

    async def get(self, conn: AsyncConnection) -> list[ThresholdLevel]:
        version = await subscriptions.WATCH.version(conn)
        if version != self.version:
            active = await subscriptions.active(conn)
            self.levels = threshold_levels((s.tenant_id, s.spec) for s in active)
            self.version = version
        return self.levels


THRESHOLDS = web.AppKey("chart_thresholds", ThresholdCache)


def build_charts(demand_history: list[Condition], status: Condition | None,
                 open_conditions: list[Condition], daily: list[Condition],
                 levels: list[ThresholdLevel], now: datetime) -> tuple[Chart, ...]:
    """The four charts in page order; `daily`: the peak forecasts and RA outlooks."""
    today = now.astimezone(PACIFIC).date()
    tomorrow = today + timedelta(days=1)
    return (
        demand_chart(demand_series(demand_history, status, today)),
        peaks_chart(area_peaks(daily, levels, tomorrow), tomorrow),
        margins_chart(margin_days(daily, today)),
        timeline_chart(timeline(open_conditions, now)),
    )


async def load_charts(rt: Runtime, cache: ThresholdCache) -> tuple[Chart, ...]:
    now = rt.clock.now()
    today = now.astimezone(PACIFIC).date()
    async with rt.store.connect() as conn:
        open_now = await conditions.list_conditions(
            conn, open_only=True, kinds=(*NOTICE_KINDS, Kind.SCE_DR_EVENT), limit=200)
        status = await conditions.list_conditions(conn, kinds=(Kind.CAISO_STATUS,), limit=1)
        demand = await conditions.list_conditions(conn, kinds=(Kind.CAISO_DEMAND,), limit=1)
        history = []
        if demand and getattr(demand[0].attributes, "operating_day", None) == today:
            history = await conditions.history(conn, demand[0].id)
        daily = await conditions.list_conditions(
            conn, kinds=(Kind.CAISO_PEAK_FORECAST, Kind.CAISO_RA_OUTLOOK),
            since=now - _DAILY_LOOKBACK, limit=500)
        levels = await cache.get(conn)
    return build_charts(history, status[0] if status else None, open_now, daily, levels, now)
