"""A local stand-in for Twilio's Messages and Calls APIs that speaks their REST contract.

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (HTTP Basic sid:token, form fields
To, From or MessagingServiceSid, Body, StatusCallback) answers 201 with an `SM...` sid, or
Twilio's error JSON (`code`, `message`, `more_info`, `status`). After a 201 it POSTs status
callbacks to StatusCallback, signed with X-Twilio-Signature exactly as Twilio does, so the
real `twilio` client and capmon's real callback endpoint are exercised end to end.

`receive` stands for a text a phone sends to capmon's number: the message is kept, as Twilio
keeps it, for `GET .../Messages/{MessageSid}.json` (its `direction` inbound, `date_created`
when it arrived), and the incoming-message webhook's form fields are returned to be posted.

`GET .../Messages.json` is Twilio's message log: every message sent and received, filtered by
To, From and DateSent (a GMT day or an ISO time; `DateSent<` on or before, `DateSent>` on or
after), most recently sent first, in pages of PageSize (50) with Twilio's paging fields
(`first_page_uri`, `next_page_uri` with a PageToken, `page`, `page_size`, `uri`...). A sent
message's status and DateSent move as its status callbacks go out; one not sent yet has no
DateSent, so it comes first and no DateSent filter matches it.

`voice` is the Calls API (capmon/demo/twilio_calls.py): calls placed, rung, answered by a
person who presses keys or by a machine, or busy, with Twilio's signed callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from capmon.demo.twilio_calls import Calls

ERRORS = {
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    20429: (429, "Too Many Requests"),
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {to} was not found"),
    20500: (500, "An internal server error has occurred"),
    20001: (400, "Invalid paging parameter"),
    21205: (400, "Url parameter is required."),
    21212: (400, "The 'From' number {to} is not a valid phone number."),
    21215: (400, "Account not authorized to call {to}."),
    21217: (400, "Phone number {to} does not appear to be valid"),
    21220: (400, "Call {to} is not in-progress. Cannot redirect."),
}


@dataclass
class Behaviour:
    # A synchronous error code, or None for a 201.
    error: int | None = None
    # Statuses sent by callback after a 201, and the ErrorCode of the last one.
    statuses: tuple[str, ...] = ("queued", "sent", "delivered")
    error_code: int | None = None
    # Send every callback before answering the create call (a callback overtaking the 201).
    callbacks_first: bool = False
    # False: the message goes through its statuses at once, but no callback is posted (they
    # were lost, or capmon's API was down).
    callbacks: bool = True
    # Set: callbacks wait for it, so a test can look at the message before Twilio reports.
    release: asyncio.Event | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


_SENT = frozenset({"sent", "delivered", "undelivered", "failed", "read"})
_PAGE_SIZE, _MAX_PAGE_SIZE = 50, 1000
_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")


@dataclass
class TwilioStandIn:
    account_sid: str
    auth_token: str
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    callbacks: list[tuple[str, str, int]] = field(default_factory=list)  # sid, status, answer
    base: str = ""
    runner: web.AppRunner | None = None
    inbound: dict[str, dict[str, Any]] = field(default_factory=dict)  # by sid
    webhooks: dict[str, dict[str, str]] = field(default_factory=dict)  # their forms, by sid
    # Answer lookups with this Twilio error (20500: Twilio is down) instead.
    lookup_error: int | None = None
    # Messages sent, by sid, as the log lists them; the query of every read of the log, and
    # the Twilio error to answer those reads with instead.
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads: list[dict[str, str]] = field(default_factory=list)
    list_error: int | None = None
    now: Callable[[], datetime] = _utcnow
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    voice: Calls = field(init=False)

    def __post_init__(self) -> None:
        self.voice = Calls(self, self.now)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{message}.json", self._fetch)
        self.voice.routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()

    def _error(self, code: int, to: str) -> web.Response:
        status, message = ERRORS[code]
        return web.json_response({"code": code, "message": message.format(to=to),
                                  "more_info": f"https://www.twilio.com/docs/errors/{code}",
                                  "status": status}, status=status)

    def _authorized(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == expected and \
            request.match_info["sid"] == self.account_sid

    def receive(self, from_: str, to: str, body: str, at: datetime,
                sid: str | None = None) -> dict[str, str]:
        """A text from `from_` that Twilio received at `at`: the webhook's form fields."""
        sid = sid or "SM" + uuid.uuid4().hex
        self.inbound[sid] = {
            "sid": sid, "account_sid": self.account_sid, "direction": "inbound",
            "status": "received", "from": from_, "to": to, "body": body, "num_segments": "1",
            "num_media": "0", "error_code": None, "error_message": None,
            "date_created": format_datetime(at), "date_sent": format_datetime(at),
            "date_updated": format_datetime(at), "messaging_service_sid": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"}
        form = {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid,
                "SmsStatus": "received", "Body": body, "To": to, "NumSegments": "1",
                "MessageSid": sid, "AccountSid": self.account_sid, "From": from_,
                "ApiVersion": "2010-04-01"}
        self.webhooks[sid] = form
        return form

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(20003, "")
        if self.lookup_error is not None:
            return self._error(self.lookup_error, "")
        message = self.inbound.get(request.match_info["message"])
        if message is None:
            return self._error(20404, request.path)
        return web.json_response(message)

    async def _create(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if not self._authorized(request):
            return self._error(20003, "")
        to = form.get("To", "")
        if not to or not form.get("Body") or not (form.get("From") or
                                                   form.get("MessagingServiceSid")):
            return self._error(21211, to)
        behaviour = self.behaviours.get(to, Behaviour())
        if behaviour.error is not None:
            return self._error(behaviour.error, to)
        sid = "SM" + uuid.uuid4().hex
        status = "accepted" if form.get("MessagingServiceSid") else "queued"
        now = format_datetime(self.now(), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        message: dict[str, Any] = {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "body": form["Body"], "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD",
            "sid": sid, "status": status,
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": to, "uri": uri}
        body = dict(message)
        self.sent[sid] = message
        callback = form.get("StatusCallback")
        if not behaviour.callbacks or not callback:
            for i, status in enumerate(behaviour.statuses):
                self._progress(sid, status, behaviour, last=i == len(behaviour.statuses) - 1)
        elif behaviour.callbacks_first:
            await self._callbacks(callback, sid, form, behaviour)
        else:
            task = asyncio.create_task(self._callbacks(callback, sid, form, behaviour))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(body, status=201)

    async def _callbacks(self, url: str, sid: str, form: dict[str, str],
                         behaviour: Behaviour) -> None:
        if behaviour.release is not None:
            await behaviour.release.wait()
        async with aiohttp.ClientSession() as session:
            for i, status in enumerate(behaviour.statuses):
                params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
                          "SmsStatus": status, "AccountSid": self.account_sid,
                          "To": form["To"], "From": form.get("From") or "+15005550006",
                          "ApiVersion": "2010-04-01"}
                last = i == len(behaviour.statuses) - 1
                if last and behaviour.error_code is not None:
                    params["ErrorCode"] = str(behaviour.error_code)
                self._progress(sid, status, behaviour, last=last)
                answer = await self.post_signed(session, url, params)
                async with self._changed:
                    self.callbacks.append((sid, status, answer))
                    self._changed.notify_all()

    def _progress(self, sid: str, status: str, behaviour: Behaviour, *, last: bool) -> None:
        message = self.sent[sid]
        now = format_datetime(self.now(), usegmt=True)
        message.update(status=status, date_updated=now)
        if status in _SENT and message["date_sent"] is None:
            message["date_sent"] = now
            message["from"] = message["from"] or "+15005550006"  # the pool's sender
        if last and behaviour.error_code is not None:
            message["error_code"] = behaviour.error_code

    async def _list(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.reads.append(query)
        if not self._authorized(request):
            return self._error(20003, "")
        if self.list_error is not None:
            return self._error(self.list_error, "")
        filters: dict[str, str] = {k: query[k] for k in _FILTERS if k in query}
        found = [m for m in [*self.sent.values(), *self.inbound.values()]
                 if _matches(m, filters)]
        # Most recently sent first; what is not sent yet before everything.
        found.sort(key=lambda m: _when(m["date_sent"] or m["date_created"]), reverse=True)
        found.sort(key=lambda m: m["date_sent"] is not None)
        try:
            size = min(max(int(query.get("PageSize", _PAGE_SIZE)), 1), _MAX_PAGE_SIZE)
            page = max(int(query.get("Page", 0)), 0)
        except ValueError:
            return self._error(20001, "")
        token = query.get("PageToken", "")
        if token.startswith("PA"):
            after = [i for i, m in enumerate(found) if m["sid"] == token[2:]]
            start = after[0] + 1 if after else len(found)
        else:
            start = page * size
        messages = found[start:start + size]
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

        def uri(page_no: int, token: str | None = None) -> str:
            q = {**filters, "PageSize": str(size), "Page": str(page_no)}
            if token:
                q["PageToken"] = token
            return f"{path}?{urlencode(q)}"

        more = start + size < len(found)
        return web.json_response({
            "end": start + len(messages) - 1 if messages else start, "first_page_uri": uri(0),
            "messages": messages,
            "next_page_uri": uri(page + 1, "PA" + messages[-1]["sid"]) if more else None,
            "page": page, "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": start, "uri": uri(page, token or None)})

    async def post_signed(self, session: aiohttp.ClientSession, url: str,
                          params: dict[str, str], signature: str | None = None) -> int:
        sig = signature if signature is not None else self.signature(url, params)
        async with session.post(url, data=params, headers={"X-Twilio-Signature": sig}) as resp:
            await resp.read()
            return resp.status

    def signature(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature of a request Twilio makes to `url` with form `params`."""
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    async def wait_callbacks(self, n: int, timeout: float = 10.0) -> None:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.callbacks) >= n)
        await asyncio.wait_for(enough(), timeout)


def _when(rfc2822: str) -> datetime:
    return parsedate_to_datetime(rfc2822)


def _matches(message: dict[str, Any], filters: dict[str, str]) -> bool:
    if "To" in filters and message["to"] != filters["To"]:
        return False
    if "From" in filters and message["from"] != filters["From"]:
        return False
    for name, keep in (("DateSent", operator.eq), ("DateSent<", operator.le),
                       ("DateSent>", operator.ge)):
        if name not in filters:
            continue
        if message["date_sent"] is None:
            return False
        sent, bound = _when(message["date_sent"]), filters[name]
        if len(bound) == 10:  # a GMT day
            if not keep(sent.astimezone(UTC).date().isoformat(), bound):
                return False
        elif not keep(sent, datetime.fromisoformat(bound.replace("Z", "+00:00"))):
            return False
    return True
