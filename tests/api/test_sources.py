"""`/v1/sources`: what capmon watches and whether it sees it, judged as /readyz judges it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from monitor.attributes import SourceHealthAttributes
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.store import Store, conditions
from tests.api.conftest import bearer, new_tenant

SINCE = datetime(2022, 9, 6, 16, 47, tzinfo=UTC)


def health(source: str, status: Status) -> Condition:
    return Condition(
        id=f"source.health:{source}", kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
        status=status, window=Window(start=SINCE),
        attributes=SourceHealthAttributes(source=source, reason="dns",
                                          last_error="cannot resolve www.sce.openadr.com"),
        revision=1, observed_at=SINCE)


async def test_sources_say_which_capmon_cannot_see(client: TestClient[Any, Any], store: Store,
                                                   clock: ManualClock) -> None:
    _tid, key = await new_tenant(client, "CPA")
    assert (await client.get("/v1/sources")).status == 401
    async with store.begin() as conn:
        await conditions.record(conn, health("sce-dr", Status.ACTIVE), clock.now())
        await conditions.record(conn, health("caiso-flex", Status.ENDED), clock.now())
    resp = await client.get("/v1/sources", headers=bearer(key))
    assert resp.status == 200
    items = {i["source"]: i for i in (await resp.json())["items"]}
    # Every polled source (no mailbox configured, so no caiso-notices), in catalogue order.
    assert list(items) == ["caiso-stats", "caiso-demand", "caiso-flex", "caiso-oasis",
                           "caiso-ra-outlook", "sce-dr"]
    assert items["caiso-flex"] == {"source": "caiso-flex", "label": "CAISO Flex Alerts",
                                   "state": "current", "since": None, "reason": None,
                                   "why": None, "last_success_at": None}
    assert items["sce-dr"] == {"source": "sce-dr", "label": "SCE DR events",
                               "state": "not_current", "since": "2022-09-06T16:47:00Z",
                               "reason": "dns", "why": "cannot resolve www.sce.openadr.com",
                               "last_success_at": None}
