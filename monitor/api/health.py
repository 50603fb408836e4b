"""`/healthz` (the process is alive), `/readyz` (bus, store and sources usable), `/metrics`.

`/readyz` answers 200 or 503 with one entry per check, each saying whether it passed and, if
not, a bounded `reason` and a human `detail` (which source is stale and since when, which
error the store raised), so a failing probe in `kubectl describe` or a load balancer log says
what to fix. Every probe has a deadline: a hung broker makes the check fail, not the request
hang.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.keys import RUNTIME, SPEC
from monitor.api.scrape import SCRAPE
from monitor.errors import CapmonError
from monitor.metrics import LAST_SUCCESS, REGISTRY, SOURCE_STALE

routes = web.RouteTableDef()
PROBE_TIMEOUT_S = 5.0

Check = dict[str, Any]


async def _probe(name: str, probe: Callable[[], Awaitable[None]]) -> Check:
    try:
        await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except TimeoutError:
        return {"ok": False, "reason": "timeout",
                "detail": f"{name} did not answer within {PROBE_TIMEOUT_S:g} s"}
    except CapmonError as exc:
        return {"ok": False, "reason": exc.reason, "detail": str(exc)}
    except Exception as exc:  # a driver error we did not wrap is still "not ready", with its type
        return {"ok": False, "reason": "error", "detail": f"{name}: {type(exc).__name__}"}
    return {"ok": True}


def _gauge_values(gauge: Any) -> dict[str, float]:
    return {s.labels["source"]: s.value for m in gauge.collect() for s in m.samples}


def sources_check() -> Check:
    """Stale sources as this process's producers see them (empty in roles without producers)."""
    last = _gauge_values(LAST_SUCCESS)
    stale = sorted(src for src, v in _gauge_values(SOURCE_STALE).items() if v >= 1)
    if not stale:
        return {"ok": True}
    details = []
    for src in stale:
        when = last.get(src)
        since = (datetime.fromtimestamp(when, UTC).isoformat() if when else "never")
        details.append(f"{src} (last good parse: {since})")
    return {"ok": False, "reason": "stale", "stale": stale,
            "detail": "stale source(s): " + ", ".join(details)}


async def readiness(request: web.Request) -> dict[str, Any]:
    rt = request.app[RUNTIME]
    bus, store = await asyncio.gather(_probe("bus", rt.bus.ping), _probe("store", rt.store.ping))
    checks = {"bus": bus, "store": store, "sources": sources_check()}
    failed = [name for name, c in checks.items() if not c["ok"]]
    return {"status": "not ready" if failed else "ready", "failed": failed, "checks": checks}


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    body = await readiness(request)
    return web.json_response(body, status=503 if body["failed"] else 200)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    # Shared-state gauges are refreshed only where monitor.api.scrape is set up (the api role).
    gauges = request.app.get(SCRAPE)
    if gauges is not None:
        await gauges.refresh()
    return web.Response(body=generate_latest(REGISTRY),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps(request.app[SPEC].document()),
                        content_type="application/json")


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    status: dict[str, Any] = {"type": "object"}
    check = {"type": "object", "required": ["ok"], "properties": {
        "ok": {"type": "boolean"}, "reason": {"type": "string"}, "detail": {"type": "string"}}}
    ready: dict[str, Any] = {"type": "object", "required": ["status", "failed", "checks"],
                             "properties": {
                                 "status": {"enum": ["ready", "not ready"]},
                                 "failed": {"type": "array", "items": {"type": "string"}},
                                 "checks": {"type": "object", "additionalProperties": check}}}
    spec.operation("GET", "/healthz", summary="Liveness", tags=("ops",), auth=None,
                   responses={200: status})
    spec.operation("GET", "/readyz", summary="Readiness: bus, store and sources", tags=("ops",),
                   auth=None, responses={200: ready, 503: ready})
    spec.operation("GET", "/openapi.json", summary="This document", tags=("ops",), auth=None,
                   responses={200: {"type": "object"}})
