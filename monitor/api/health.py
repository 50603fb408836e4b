"""`/healthz` (the process is alive), `/readyz` (bus, store and sources usable), `/metrics`.

`/readyz` says `ready`, `degraded` (capmon cannot see one of its sources: which, since when,
why in words) or `not ready` (bus or store failing, or a task of this process died lately),
with one entry per check, each saying whether it passed and, if not, a bounded `reason` and
a human `detail`, so a failing probe in `kubectl describe` or a load balancer log says what
to fix. Sources are judged by their
`source.health` conditions, from the store and from this process's producers, so a restart
does not turn a blind capmon `ready`. Every probe has a deadline: a hung broker makes the
check fail, not the request hang.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.keys import RUNTIME, SPEC
from monitor.api.scrape import SCRAPE
from monitor.clock import PACIFIC
from monitor.errors import CapmonError
from monitor.events import Condition
from monitor.metrics import READY, REGISTRY
from monitor.runtime import Runtime
from monitor.source_health import current_health, not_current

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


def sources_check(health: list[Condition], polled: set[str]) -> Check:
    """The sources capmon cannot see (one definition: an open `source.health` condition),
    whichever process polls them. `blocking` says whether this process polls one of them."""
    blind = not_current(health)
    if not blind:
        return {"ok": True}
    return {"ok": False, "reason": "stale", "stale": [b.source for b in blind],
            "blocking": any(b.source in polled for b in blind),
            "sources": [{"source": b.source, "label": b.label,
                         "since": b.since.isoformat() if b.since else None,
                         "reason": b.reason, "why": b.why,
                         "last_success_at": (b.last_success_at.isoformat()
                                             if b.last_success_at else None)}
                        for b in blind],
            "detail": "capmon cannot see: " + "; ".join(
                f"{b.label} ({b.source}) since {_when(b.since)}: {b.why}" for b in blind)}


def tasks_check(rt: Runtime) -> Check:
    """Supervised tasks of this process that died lately (and are being restarted)."""
    recent = rt.tasks.recent(rt.clock.monotonic())
    if not recent:
        return {"ok": True}
    return {"ok": False, "reason": "task_failed", "tasks": [f.task for f in recent],
            "detail": "; ".join(f"{f.task} failed ({f.error}), restarted {f.restarts} time(s)"
                                for f in recent)}


def _when(t: datetime | None) -> str:
    return t.astimezone(PACIFIC).strftime("%Y-%m-%d %H:%M %Z") if t else "start"


async def readiness(rt: Runtime) -> tuple[dict[str, Any], int]:
    """The answer and its HTTP status: 503 when the bus or the store fails, a supervised task
    died in the last minute (monitor/supervision.py), or when a source
    this process polls cannot be seen (a producer that cannot see is not doing its job, and
    a rollout that broke a parser stops); a process that only reads what others polled says
    `degraded` with 200, so the status page stays routed while it tells people. The checks
    also set `capmon_ready`, so Prometheus sees what the probe sees."""
    bus, store, health = await asyncio.gather(
        _probe("bus", rt.bus.ping), _probe("store", rt.store.ping),
        current_health(rt.store, rt.health, PROBE_TIMEOUT_S))
    sources = sources_check(health, rt.health.polled)
    checks = {"bus": bus, "store": store, "tasks": tasks_check(rt), "sources": sources}
    failed = [name for name, c in checks.items() if not c["ok"]]
    broken = [name for name in ("bus", "store", "tasks") if name in failed]
    status = "not ready" if broken else "degraded" if failed else "ready"
    code = 503 if broken or sources.get("blocking") else 200
    for name, check in checks.items():
        READY.labels(name).set(1 if check["ok"] else 0)
    return {"status": status, "failed": failed, "checks": checks}, code


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    body, code = await readiness(request.app[RUNTIME])
    return web.json_response(body, status=code)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    # Shared-state gauges are refreshed only where monitor.api.scrape is set up (the api role).
    gauges = request.app.get(SCRAPE)
    if gauges is not None:
        await gauges.refresh()
    await readiness(request.app[RUNTIME])
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
                                 "status": {"enum": ["ready", "degraded", "not ready"]},
                                 "failed": {"type": "array", "items": {"type": "string"}},
                                 "checks": {"type": "object", "additionalProperties": check}}}
    spec.operation("GET", "/healthz", summary="Liveness", tags=("ops",), auth=None,
                   responses={200: status})
    spec.operation("GET", "/readyz", summary="Readiness: bus, store and sources (what capmon "
                   "cannot see)", tags=("ops",),
                   auth=None, responses={200: ready, 503: ready})
    spec.operation("GET", "/openapi.json", summary="This document", tags=("ops",), auth=None,
                   responses={200: {"type": "object"}})
