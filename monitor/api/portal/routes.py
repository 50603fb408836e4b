"""The portal's pages: subscriptions (list, create, edit, pause and resume, delete, test,
rotate the secret, the calendar feed's address) and the delivery log (entries, their
attempts, replay, acknowledgement).

Each action calls the operation the API's handler calls (monitor.api.subscriptions,
monitor.api.replay, monitor.api.calendar, monitor.api.notifications), so it is checked,
refused and recorded as through the API; a refusal is shown on the page it came from, with
the API's title and detail, and the API's status code.
Every read is scoped to the signed-in tenant: another tenant's id is 404, as in the API.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, ValidationError

from monitor import ledger
from monitor.api.calendar import CalendarFeed, make_feed, remove_feed
from monitor.api.common import next_offset, parse_query, path_id
from monitor.api.keys import RUNTIME
from monitor.api.notifications import NotificationQuery, acknowledge_as
from monitor.api.portal import forms
from monitor.api.portal.render import SESSION, page, redirect
from monitor.api.portal.sessions import HOME, PATH
from monitor.api.problems import Problem, invalid_body
from monitor.api.replay import replay_notification
from monitor.api.subscriptions import (
    RotatedSecret,
    SecretRotation,
    SubscriptionQuery,
    change_status,
    create_subscription,
    delete_subscription,
    owned,
    replace_subscription,
    rotate_webhook_secret,
    send_test,
)
from monitor.ledger import acks
from monitor.store import calendar_feeds
from monitor.store import subscriptions as sub_store
from monitor.store.subscriptions import StoredSubscription
from monitor.subscriptions import StatusPatch

LOG = f"{PATH}/notifications"
# What a redirect after a form says happened (by name: nothing from the query is shown).
DONE = {
    "saved": "Saved.",
    "paused": "Paused: nothing is sent to it until it is resumed.",
    "active": "Active: it is matched and sent to again.",
    "deleted": "Subscription deleted.",
    "test": "Test notification queued: deliver sends it within seconds.",
    "replayed": "Queued to be sent again, under the same key.",
    "acknowledged": "Acknowledged: you have it.",
    "feed_removed": "Calendar feed removed: its address no longer answers.",
}
REPLAYABLE = (ledger.State.DEAD, ledger.State.FAILED, ledger.State.DELIVERED)
OVERLAPS = ((0, "none: the old secret stops at once"), (3600, "1 hour"),
            (86_400, "1 day"), (604_800, "7 days"))

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)


def _tenant_id(request: web.Request) -> str:
    return request[SESSION].tenant.id


def _done(request: web.Request) -> str | None:
    return DONE.get(request.query.get("done", ""))


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_body(exc) from None


async def _owned(request: web.Request) -> StoredSubscription:
    return await owned(request, _tenant_id(request), path_id(request))


@routes.get(PATH)
@routes.get(f"{PATH}/")
async def home(request: web.Request) -> web.StreamResponse:
    return redirect(HOME)


@routes.get(HOME)
async def subscriptions(request: web.Request) -> web.StreamResponse:
    q = parse_query(request, SubscriptionQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        subs = await sub_store.list_for(conn, _tenant_id(request), status=q.status,
                                        limit=q.limit, offset=q.offset)
    return page(request, "subscriptions.html.j2", subs=subs, query=q,
                next_offset=next_offset(q, len(subs)), done=_done(request))


def _form(request: web.Request, values: forms.FormValues, sub: StoredSubscription | None,
          problem: Problem | None = None) -> web.Response:
    return page(request, "subscription_form.html.j2", status=problem.status if problem else 200,
                values=values, sub=sub, problem=problem, forms=forms)


async def _detail(request: web.Request, sub: StoredSubscription, *, secret: str | None = None,
                  rotated: RotatedSecret | None = None, problem: Problem | None = None,
                  done: str | None = None, made: CalendarFeed | None = None) -> web.Response:
    async with request.app[RUNTIME].store.connect() as conn:
        entries = await ledger.list_entries(conn, tenant_id=sub.tenant_id,
                                            subscription_id=sub.id, limit=10)
        feed = await calendar_feeds.get(conn, sub.id, sub.tenant_id)
    return page(request, "subscription.html.j2", status=problem.status if problem else 200,
                sub=sub, secret=secret, rotated=rotated, problem=problem, done=done,
                entries=entries, overlaps=OVERLAPS, log=LOG, feed=feed,
                feed_url=None if made is None else made.url)


@routes.get(f"{HOME}/new")
async def new_form(request: web.Request) -> web.StreamResponse:
    return _form(request, forms.blank(), None)


@routes.post(f"{HOME}/new")
async def create(request: web.Request) -> web.StreamResponse:
    values = forms.read(await request.post())
    try:
        sub, secret = await create_subscription(request, _tenant_id(request),
                                                forms.spec_of(values))
    except Problem as problem:
        return _form(request, values, None, problem)
    # Rendered, not redirected to: the secret is shown this once and stored nowhere else.
    return await _detail(request, sub, secret=secret, done="Subscription created.")


@routes.get(f"{HOME}/{{id}}")
async def detail(request: web.Request) -> web.StreamResponse:
    return await _detail(request, await _owned(request), done=_done(request))


@routes.get(f"{HOME}/{{id}}/edit")
async def edit_form(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    return _form(request, forms.values_of(sub.spec), sub)


@routes.post(f"{HOME}/{{id}}/edit")
async def edit(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    values = forms.read(await request.post())
    try:
        updated, secret = await replace_subscription(request, sub, forms.spec_of(values))
    except Problem as problem:
        return _form(request, values, sub, problem)
    if secret is not None:  # it became a webhook: its first secret, shown this once
        return await _detail(request, updated, secret=secret, done=DONE["saved"])
    return redirect(f"{HOME}/{sub.id}?done=saved")


@routes.post(f"{HOME}/{{id}}/status")
async def set_status(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    try:
        patch = _validated(StatusPatch, {"status": (await request.post()).get("status")})
        fresh = await change_status(request, sub, patch.status)
    except Problem as problem:
        return await _detail(request, sub, problem=problem)
    return redirect(f"{HOME}/{sub.id}?done={fresh.status}")


@routes.post(f"{HOME}/{{id}}/delete")
async def delete(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    if (await request.post()).get("confirm") != "yes":
        return await _detail(request, sub, problem=Problem(
            422, "Not deleted", "tick the box beside the button to confirm the deletion"))
    await delete_subscription(request, sub)
    return redirect(f"{HOME}?done=deleted")


@routes.post(f"{HOME}/{{id}}/test")
async def test(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    try:
        queued = await send_test(request, sub)
    except Problem as problem:
        return await _detail(request, sub, problem=problem)
    return redirect(f"{LOG}/{queued.key}?done=test")


@routes.post(f"{HOME}/{{id}}/rotate-secret")
async def rotate(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    try:
        rotation = _validated(SecretRotation,
                              {"overlap_s": (await request.post()).get("overlap_s", 86_400)})
        rotated = await rotate_webhook_secret(request, sub, rotation)
    except Problem as problem:
        return await _detail(request, sub, problem=problem)
    return await _detail(request, sub, rotated=rotated)


@routes.post(f"{HOME}/{{id}}/calendar")
async def calendar(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    made = await make_feed(request, sub.id, sub.tenant_id)
    # Rendered, not redirected to: the address is shown this once, like a secret.
    return await _detail(request, sub, made=made, done="Calendar feed address made.")


@routes.post(f"{HOME}/{{id}}/calendar/delete")
async def calendar_delete(request: web.Request) -> web.StreamResponse:
    sub = await _owned(request)
    try:
        await remove_feed(request, sub.id, sub.tenant_id)
    except Problem as problem:
        return await _detail(request, sub, problem=problem)
    return redirect(f"{HOME}/{sub.id}?done=feed_removed")


@routes.get(LOG)
async def notifications(request: web.Request) -> web.StreamResponse:
    # The filter form sends "any" as an empty value; the API's query model has no such value.
    asked = [(k, v) for k, v in request.query.items() if v]
    if len(asked) < len(request.query):
        return redirect(f"{LOG}?{urlencode(asked)}" if asked else LOG)
    tenant_id = _tenant_id(request)
    q = parse_query(request, NotificationQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        entries = await ledger.list_entries(
            conn, tenant_id=tenant_id, subscription_id=q.subscription_id, states=q.state,
            channel=q.channel, since=q.since, limit=q.limit, offset=q.offset)
        subs = await sub_store.list_for(conn, tenant_id, limit=500)
        taken = await acks.acks_of(conn, [e.key for e in entries])
    return page(request, "notifications.html.j2", entries=entries, subs=subs, query=q,
                acks=taken,
                states=[s.value for s in ledger.State], next_offset=next_offset(q, len(entries)),
                filters=urlencode([(k, v) for k, v in asked if k not in ("offset", "limit")]),
                log=LOG)


async def _entry(request: web.Request, key: str, *, problem: Problem | None = None,
                 done: str | None = None) -> web.Response:
    async with request.app[RUNTIME].store.connect() as conn:
        entry = await ledger.get(conn, key, _tenant_id(request))
        if entry is None:
            raise Problem(404, "No such notification")
        attempts = await ledger.attempts_for(conn, entry.key)
        ack = (await acks.acks_of(conn, [entry.key])).get(entry.key)
        ackable = ack is None and await acks.may_acknowledge(conn, entry)
    return page(request, "notification.html.j2", status=problem.status if problem else 200,
                entry=entry, n=entry.notification(), attempts=attempts, problem=problem, done=done,
                replayable=entry.state in REPLAYABLE, log=LOG, ack=ack, ackable=ackable)


@routes.get(f"{LOG}/{{key}}")
async def notification(request: web.Request) -> web.StreamResponse:
    return await _entry(request, path_id(request, "key"), done=_done(request))


@routes.post(f"{LOG}/{{key}}/replay")
async def replay(request: web.Request) -> web.StreamResponse:
    key = path_id(request, "key")
    try:
        await replay_notification(request, _tenant_id(request), key)
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _entry(request, key, problem=problem)
    return redirect(f"{LOG}/{key}?done=replayed")


@routes.post(f"{LOG}/{{key}}/ack")
async def acknowledge(request: web.Request) -> web.StreamResponse:
    key = path_id(request, "key")
    by = str((await request.post()).get("by", "")).strip()[:200]
    try:
        await acknowledge_as(request, _tenant_id(request), key,
                             by or request[SESSION].tenant.name, acks.Via.PORTAL)
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _entry(request, key, problem=problem)
    return redirect(f"{LOG}/{key}?done=acknowledged")
