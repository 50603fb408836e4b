"""The portal's silences page: the tenant's silences (in force, pending, over), a form to make
one, and expiring or deleting one, through the API's own operations (monitor.api.silences).

The form's times are Pacific wall-clock times (`datetime-local` inputs carry no zone), as
CAISO and SCE announce theirs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from pydantic import ValidationError

from monitor.api.common import now_of, path_id
from monitor.api.keys import RUNTIME
from monitor.api.portal.forms import split_list
from monitor.api.portal.render import SESSION, page, redirect
from monitor.api.portal.sessions import PATH
from monitor.api.problems import Problem, invalid_body
from monitor.api.silences import create_silence, delete_silence, expire_silence
from monitor.clock import PACIFIC
from monitor.events import Kind, Severity
from monitor.silences import SilenceSpec, SilenceView
from monitor.store import silences as silence_store
from monitor.store import subscriptions as sub_store

SILENCES = f"{PATH}/silences"
DONE = {"created": "Silence created.", "expired": "Silence expired: it holds nothing back now.",
        "deleted": "Silence deleted."}
routes = web.RouteTableDef()


def _when(value: str) -> str | None:
    """A `datetime-local` value read as Pacific, in ISO 8601 with its offset."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=PACIFIC).isoformat()
    except ValueError:
        return value  # left as typed: the model's validation names the field


def spec_of(form: MultiDictProxy[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "match": {
            "kinds": form.getall("kinds", []),
            "condition_ids": split_list(str(form.get("condition_ids", ""))),
            "regions": split_list(str(form.get("regions", ""))),
            "programs": split_list(str(form.get("programs", ""))),
            "subscription_ids": form.getall("subscription_ids", []),
            "min_severity": form.get("min_severity") or "info",
            "max_severity": form.get("max_severity") or "critical",
        },
        "ends_at": _when(str(form.get("ends_at", ""))),
        "created_by": str(form.get("created_by", "")).strip(),
        "comment": str(form.get("comment", "")).strip(),
        "include_all_clear": form.get("include_all_clear") == "yes",
    }
    starts = _when(str(form.get("starts_at", "")))
    if starts is not None:
        body["starts_at"] = starts
    return body


async def _page(request: web.Request, *, problem: Problem | None = None,
                values: MultiDictProxy[Any] | None = None) -> web.Response:
    tenant = request[SESSION].tenant
    now = now_of(request)
    async with request.app[RUNTIME].store.connect() as conn:
        found = await silence_store.list_silences(conn, tenant.id, now, limit=200)
        subs = await sub_store.list_for(conn, tenant.id, limit=500)
    return page(request, "silences.html.j2", status=problem.status if problem else 200,
                silences=[SilenceView.of(s, now) for s in found], subs=subs, problem=problem,
                values=values if values is not None else MultiDictProxy(MultiDict()),
                done=DONE.get(request.query.get("done", "")),
                kinds=[k.value for k in Kind], severities=[s.value for s in Severity],
                path=SILENCES)


@routes.get(SILENCES)
async def silences(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@routes.post(SILENCES)
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        try:
            spec = SilenceSpec.model_validate(spec_of(form))
        except ValidationError as exc:
            raise invalid_body(exc) from None
        await create_silence(request, request[SESSION].tenant.id, spec)
    except Problem as problem:
        return await _page(request, problem=problem, values=form)
    return redirect(f"{SILENCES}?done=created")


@routes.post(f"{SILENCES}/{{id}}/expire")
async def expire(request: web.Request) -> web.StreamResponse:
    await expire_silence(request, request[SESSION].tenant.id, path_id(request))
    return redirect(f"{SILENCES}?done=expired")


@routes.post(f"{SILENCES}/{{id}}/delete")
async def delete(request: web.Request) -> web.StreamResponse:
    await delete_silence(request, request[SESSION].tenant.id, path_id(request))
    return redirect(f"{SILENCES}?done=deleted")
