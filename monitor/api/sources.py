"""`/v1/sources`: every source capmon watches and whether it can see it now.

The same judgement as `/readyz` and the status page (monitor.source_health): a source is not
current while its `source.health` condition is open.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field

from monitor.api.auth import require_tenant
from monitor.api.keys import RUNTIME, SPEC
from monitor.source_health import current_health, enabled_sources, not_current, source_label

routes = web.RouteTableDef()


class SourceState(BaseModel):
    source: str = Field(description="the source's name, e.g. caiso-stats")
    label: str = Field(description="what a person calls it, e.g. CAISO Today's Outlook")
    state: Literal["current", "not_current"]
    since: AwareDatetime | None = Field(default=None,
                                        description="not current since (start, if never seen)")
    reason: str | None = Field(default=None, description="bounded reason, e.g. dns, timeout")
    why: str | None = Field(default=None, description="in words: cannot resolve www.caiso.com")
    last_success_at: AwareDatetime | None = None


class SourceList(BaseModel):
    items: list[SourceState]


@routes.get("/v1/sources")
async def list_sources(request: web.Request) -> web.Response:
    await require_tenant(request)
    rt = request.app[RUNTIME]
    blind = {b.source: b for b in not_current(await current_health(rt.store, rt.health))}
    names = list(enabled_sources(rt.settings))
    names += [name for name in blind if name not in names]
    items = []
    for name in names:
        b = blind.get(name)
        if b is None:
            items.append(SourceState(source=name, label=source_label(name), state="current"))
        else:
            items.append(SourceState(source=name, label=b.label, state="not_current",
                                     since=b.since, reason=b.reason, why=b.why,
                                     last_success_at=b.last_success_at))
    return web.json_response(SourceList(items=items).model_dump(mode="json"))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app[SPEC].operation("GET", "/v1/sources",
                        summary="The sources capmon watches and whether it can see each now",
                        tags=("conditions",), responses={200: SourceList})
