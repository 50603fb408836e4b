"""`/healthz` (the process is alive), `/readyz` (bus, store and sources usable), `/metrics`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.keys import RUNTIME, SPEC
from monitor.errors import CapmonError
from monitor.metrics import REGISTRY, SOURCE_STALE

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    checks: dict[str, str] = {}
    for name, probe in (("bus", rt.bus.ping), ("store", rt.store.ping)):
        try:
            await probe()
            checks[name] = "ok"
        except CapmonError as exc:
            checks[name] = f"failing: {exc}"
    stale = sorted(
        sample.labels["source"]
        for metric in SOURCE_STALE.collect()
        for sample in metric.samples
        if sample.value >= 1
    )
    checks["sources"] = "ok" if not stale else "stale: " + ", ".join(stale)
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks},
                             status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(_request: web.Request) -> web.Response:
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
    spec.operation("GET", "/healthz", summary="Liveness", tags=("ops",), auth=None,
                   responses={200: status})
    spec.operation("GET", "/readyz", summary="Readiness: bus, store and sources", tags=("ops",),
                   auth=None, responses={200: status, 503: status})
    spec.operation("GET", "/openapi.json", summary="This document", tags=("ops",), auth=None,
                   responses={200: {"type": "object"}})
