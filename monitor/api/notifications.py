"""`/v1/notifications`: the ledger, tenant-scoped and filterable (deliver adds `/replay`),
and `/ack`: a tenant's own systems, or webhook receivers, acknowledging a notification."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from monitor import ledger
from monitor.api.auth import require_tenant
from monitor.api.common import (
    IsoDatetime,
    PageQuery,
    next_offset,
    parse_query,
    path_id,
    path_parameter,
    query_parameters,
)
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem, parse_body
from monitor.ledger import acks
from monitor.notifications import Notification
from monitor.store.subscriptions import aware

routes = web.RouteTableDef()

class NotificationQuery(PageQuery):
    subscription_id: str | None = Field(default=None, max_length=36)
    state: list[ledger.State] = Field(default_factory=list, max_length=6)
    channel: Literal["webhook", "sms", "voice", "email"] | None = None
    since: IsoDatetime | None = Field(default=None, description="created at or after")


class Acknowledgement(BaseModel):
    by: str
    via: acks.Via
    at: AwareDatetime


class AckOut(Acknowledgement):
    key: str


class AckRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    by: str = Field(default="the tenant's API key", min_length=1, max_length=200,
                    description="who has it, in words (a name, a system)")


class LedgerEntryOut(BaseModel):
    key: str
    subscription_id: str
    channel: str
    state: ledger.State
    attempt_count: int
    next_attempt_at: AwareDatetime | None
    last_error: str | None = Field(description="the last error, or why it was suppressed")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    delivered_at: AwareDatetime | None
    acknowledgement: Acknowledgement | None = None
    notification: Notification


class Attempt(BaseModel):
    attempt_no: int
    attempted_at: AwareDatetime
    channel: str
    outcome: str
    status_code: int | None
    provider_error: str | None
    error: str | None
    latency_s: float | None


class LedgerEntryDetail(LedgerEntryOut):
    attempts: list[Attempt]


class NotificationPage(BaseModel):
    items: list[LedgerEntryOut]
    limit: int
    offset: int
    next_offset: int | None


def _opt(value: Any) -> Any:
    return None if value is None else aware(value)


def _ack(a: acks.Ack | None) -> Acknowledgement | None:
    return None if a is None else Acknowledgement(by=a.by, via=a.via, at=a.at)


def entry_out(e: ledger.LedgerEntry, ack: acks.Ack | None = None) -> LedgerEntryOut:
    """A ledger entry as the API (and `capmon notifications list`) shows it."""
    return LedgerEntryOut(**_fields(e, ack))


def entry_detail(e: ledger.LedgerEntry, ack: acks.Ack | None,
                 attempts: list[dict[str, Any]]) -> LedgerEntryDetail:
    """One entry with its attempts (the API's and `capmon notifications show`)."""
    return LedgerEntryDetail(**_fields(e, ack), attempts=[
        Attempt(**{**a, "attempted_at": aware(a["attempted_at"])}) for a in attempts])


def _fields(e: ledger.LedgerEntry, ack: acks.Ack | None) -> dict[str, Any]:
    return {"acknowledgement": _ack(ack), "key": e.key, "subscription_id": e.subscription_id,
            "channel": e.channel,
            "state": e.state, "attempt_count": e.attempt_count,
            "next_attempt_at": _opt(e.next_attempt_at), "last_error": e.last_error,
            "created_at": aware(e.created_at), "updated_at": aware(e.updated_at),
            "delivered_at": _opt(e.delivered_at), "notification": e.notification()}


@routes.get("/v1/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    q = parse_query(request, NotificationQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        entries = await ledger.list_entries(
            conn, tenant_id=tenant.id, subscription_id=q.subscription_id, states=q.state,
            channel=q.channel, since=q.since, limit=q.limit, offset=q.offset)
        taken = await acks.acks_of(conn, [e.key for e in entries])
    page = NotificationPage(items=[entry_out(e, taken.get(e.key)) for e in entries],
                            limit=q.limit,
                            offset=q.offset, next_offset=next_offset(q, len(entries)))
    return web.json_response(page.model_dump(mode="json"))


@routes.get("/v1/notifications/{key}")
async def get_notification(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    async with request.app[RUNTIME].store.connect() as conn:
        entry = await ledger.get(conn, path_id(request, "key"), tenant.id)
        if entry is None:
            raise Problem(404, "No such notification")
        attempts = await ledger.attempts_for(conn, entry.key)
        taken = await acks.acks_of(conn, [entry.key])
    detail = entry_detail(entry, taken.get(entry.key), attempts)
    return web.json_response(detail.model_dump(mode="json"))


async def acknowledge_as(request: web.Request, tenant_id: str, key: str, by: str,
                         via: acks.Via) -> acks.Ack:
    """The acknowledgement, or the problem that refuses it (the API's and the portal's)."""
    rt = request.app[RUNTIME]
    try:
        async with rt.store.begin() as conn:
            return await acks.acknowledge(conn, key, by, via, rt.clock.now(),
                                          tenant_id=tenant_id)
    except acks.AckRefused as exc:
        if exc.reason == "not_found":
            raise Problem(404, "No such notification") from None
        title = {"already": "Already acknowledged", "not_sent": "Nothing to acknowledge",
                 "below_ack_severity": "Not acknowledgeable",
                 "all_clear": "Nothing to acknowledge"}[exc.reason]
        raise Problem(409, title, exc.detail) from None


@routes.post("/v1/notifications/{key}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge with the tenant's key: 200 the first time, 409 with who has it after."""
    tenant = await require_tenant(request)
    body = await parse_body(request, AckRequest) if request.body_exists else AckRequest()
    ack = await acknowledge_as(request, tenant.id, path_id(request, "key"), body.by,
                               acks.Via.API)
    out = AckOut(key=ack.key, by=ack.by, via=ack.via, at=ack.at)
    return web.json_response(out.model_dump(mode="json"))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    tags = ("notifications",)
    spec.operation("GET", "/v1/notifications", summary="The delivery log (ledger), filtered",
                   tags=tags, responses={200: NotificationPage},
                   parameters=query_parameters(NotificationQuery))
    spec.operation("GET", "/v1/notifications/{key}", summary="One notification and its attempts",
                   tags=tags, responses={200: LedgerEntryDetail},
                   parameters=[path_parameter("key", "notification key")])
    spec.operation("POST", "/v1/notifications/{key}/ack",
                   summary="Acknowledge a notification (once; at or above its subscription's "
                           "ack_severity)", tags=tags, request=AckRequest,
                   responses={200: AckOut}, problems=(409,),
                   parameters=[path_parameter("key", "notification key")])
