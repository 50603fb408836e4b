"""The Twilio stand-in's Calls API: calls placed, played and reported as Twilio does.

`POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (form fields To, From, Twiml or Url,
StatusCallback, StatusCallbackEvent, MachineDetection, AsyncAmd, AsyncAmdStatusCallback,
Timeout) answers 201 with a `CA...` call resource, or Twilio's error JSON (21211 for a To
that is not a phone number). `GET .../Calls/{CallSid}.json` is the call resource;
`POST .../Calls/{CallSid}.json` with Twiml replaces what the live call plays.

Then the call is played after the number's `CallBehaviour`: signed status callbacks
(initiated, ringing, then in-progress and completed, or busy / no-answer / failed), for an
answered call the answering-machine callback (`AnsweredBy` human or machine_end_beep) when
AsyncAmd asked for one, and the TwiML read verb by verb: each `<Say>` is recorded, and at a
`<Gather>` a person presses the behaviour's next key, which is POSTed, signed, to the
Gather's action with Digits; the TwiML that answers is played in turn. A machine presses
nothing. Unlike Twilio, the answering-machine result is reported before the TwiML starts, so
a replaced TwiML is all a machine hears.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from capmon.demo.twilio_standin import TwilioStandIn

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_UNANSWERED = ("busy", "no-answer", "failed")
# A TwiML answer that leads to another (a key that repeats the message) is followed this far.
_MAX_TURNS = 5


@dataclass
class CallBehaviour:
    # human, machine, busy, no-answer or failed
    answer: str = "human"
    # The keys a person presses, one at each Gather met; none left, the Gather times out.
    digits: tuple[str, ...] = ()
    # A synchronous error code for the create call, or None for a 201.
    error: int | None = None
    # The ErrorCode of a failed call's last callback.
    error_code: int | None = None
    # Set: the call waits for it before ringing, so a test can order events.
    release: asyncio.Event | None = None
    # Set: the person listens until it is set before pressing a key (the demo's number that
    # presses 1 a while into the call; a test looking at a call in progress).
    press: asyncio.Event | None = None


@dataclass
class Played:
    """What happened on one call, for tests and the demo to read."""

    said: list[str] = field(default_factory=list)
    # (digits pressed, the HTTP status of the Gather action's answer)
    keys: list[tuple[str, int]] = field(default_factory=list)
    answered_by: str | None = None
    ended: str | None = None


class Calls:
    """The Calls resource of one `TwilioStandIn`: its account, signatures and clock."""

    def __init__(self, twilio: TwilioStandIn, now: Callable[[], datetime]) -> None:
        self.twilio = twilio
        self.now = now
        self.behaviours: dict[str, CallBehaviour] = {}
        self.requests: list[dict[str, Any]] = []  # create forms; StatusCallbackEvent a list
        self.calls: dict[str, dict[str, Any]] = {}  # call resources, by sid
        self.twiml: dict[str, str] = {}  # what each call plays now, by sid
        self.played: dict[str, Played] = {}
        # (sid, callback: status / amd / gather, what it said, capmon's answer status)
        self.callbacks: list[tuple[str, str, str, int]] = []
        self._changed = asyncio.Condition()

    def routes(self, app: web.Application) -> None:
        base = "/2010-04-01/Accounts/{sid}/Calls"
        app.router.add_post(base + ".json", self._create)
        app.router.add_get(base + "/{call}.json", self._fetch)
        app.router.add_post(base + "/{call}.json", self._update)

    async def _create(self, request: web.Request) -> web.Response:
        post = await request.post()
        form: dict[str, Any] = {k: str(v) for k, v in post.items()}
        form["StatusCallbackEvent"] = [str(v) for v in post.getall("StatusCallbackEvent", [])]
        self.requests.append(form)
        if not self.twilio._authorized(request):
            return self.twilio._error(20003, "")
        to, from_ = form.get("To", ""), form.get("From", "")
        if not _E164.match(to):
            return self.twilio._error(21211, to)
        if not _E164.match(from_) or not (form.get("Twiml") or form.get("Url")):
            return self.twilio._error(21205 if not from_ else 21211, from_)
        behaviour = self.behaviours.get(to, CallBehaviour())
        if behaviour.error is not None:
            return self.twilio._error(behaviour.error, to)
        sid = "CA" + uuid.uuid4().hex
        now = format_datetime(self.now(), usegmt=True)
        account = self.twilio.account_sid
        uri = f"/2010-04-01/Accounts/{account}/Calls/{sid}.json"
        call: dict[str, Any] = {
            "sid": sid, "account_sid": account, "api_version": "2010-04-01",
            "to": to, "to_formatted": to, "from": from_, "from_formatted": from_,
            "status": "queued", "direction": "outbound-api", "answered_by": None,
            "date_created": now, "date_updated": now, "start_time": None, "end_time": None,
            "duration": None, "price": None, "price_unit": "USD", "parent_call_sid": None,
            "phone_number_sid": None, "caller_name": None, "forwarded_from": None,
            "group_sid": None, "queue_time": "0", "trunk_sid": None, "annotation": None,
            "uri": uri, "subresource_uris": {
                "recordings": uri.removesuffix(".json") + "/Recordings.json"}}
        self.calls[sid] = call
        self.twiml[sid] = form.get("Twiml", "")
        self.played[sid] = Played()
        task = asyncio.create_task(self._play(sid, form, behaviour))
        self.twilio._tasks.add(task)
        task.add_done_callback(self.twilio._tasks.discard)
        return web.json_response(dict(call), status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self.twilio._authorized(request):
            return self.twilio._error(20003, "")
        call = self.calls.get(request.match_info["call"])
        if call is None:
            return self.twilio._error(20404, request.path)
        return web.json_response(call)

    async def _update(self, request: web.Request) -> web.Response:
        if not self.twilio._authorized(request):
            return self.twilio._error(20003, "")
        sid = request.match_info["call"]
        call = self.calls.get(sid)
        if call is None:
            return self.twilio._error(20404, request.path)
        form = {k: str(v) for k, v in (await request.post()).items()}
        if call["status"] not in ("queued", "ringing", "in-progress"):
            return self.twilio._error(21220, sid)
        if "Twiml" in form:
            self.twiml[sid] = form["Twiml"]
        return web.json_response(call)

    # -- the call as the phone at the other end lives it --------------------------------------

    async def _play(self, sid: str, form: dict[str, Any], behaviour: CallBehaviour) -> None:
        if behaviour.release is not None:
            await behaviour.release.wait()
        events = set(form["StatusCallbackEvent"])
        async with aiohttp.ClientSession() as session:
            for status, event in (("initiated", "initiated"), ("ringing", "ringing")):
                await self._status(session, sid, form, status, send=event in events)
            if behaviour.answer in _UNANSWERED:
                extra = {"ErrorCode": str(behaviour.error_code)} if behaviour.error_code else {}
                await self._status(session, sid, form, behaviour.answer, send=True, **extra)
                return
            machine = behaviour.answer == "machine"
            answered_by = "machine_end_beep" if machine else "human"
            amd = form.get("MachineDetection") is not None
            if amd:
                self.played[sid].answered_by = answered_by
                self.calls[sid]["answered_by"] = answered_by
            await self._status(session, sid, form, "in-progress", send="answered" in events)
            if amd and form.get("AsyncAmd") == "true" and form.get("AsyncAmdStatusCallback"):
                params = self._fields(sid, form) | {"AnsweredBy": answered_by,
                                                    "MachineDetectionDuration": "2300"}
                answer = await self.twilio.post_signed(
                    session, form["AsyncAmdStatusCallback"], params)
                await self._record(sid, "amd", answered_by, answer)
            keys = [] if machine else list(behaviour.digits)
            await self._speak(session, sid, form, self.twiml[sid], keys, behaviour.press)
            extra = {"AnsweredBy": answered_by} if amd else {}
            await self._status(session, sid, form, "completed", send=True,
                               CallDuration="42", **extra)

    async def _speak(self, session: aiohttp.ClientSession, sid: str, form: dict[str, Any],
                     twiml: str, keys: list[str], press: asyncio.Event | None) -> None:
        for _ in range(_MAX_TURNS):
            try:
                # capmon's own TwiML, from the API under test or the call it placed.
                verbs = list(ET.fromstring(twiml))  # noqa: S314
            except ET.ParseError:
                return  # Twilio says "an application error has occurred" and hangs up
            following = None
            for verb in verbs:
                if verb.tag == "Say":
                    self.played[sid].said.append(verb.text or "")
                elif verb.tag == "Hangup":
                    return
                elif verb.tag == "Gather":
                    self.played[sid].said += [v.text or "" for v in verb if v.tag == "Say"]
                    if keys and verb.get("action"):
                        if press is not None:
                            await press.wait()
                        digits = keys.pop(0)
                        following = await self._gather(session, sid, form, verb.get("action", ""),
                                                       digits)
                        break
            if following is None:
                return
            twiml = following

    async def _gather(self, session: aiohttp.ClientSession, sid: str, form: dict[str, Any],
                      action: str, digits: str) -> str | None:
        params = self._fields(sid, form) | {"Digits": digits, "FinishedOnKey": "",
                                            "CallStatus": "in-progress"}
        sig = self.twilio.signature(action, params)
        async with session.post(action, data=params,
                                headers={"X-Twilio-Signature": sig}) as resp:
            body = await resp.text()
            status = resp.status
        self.played[sid].keys.append((digits, status))
        await self._record(sid, "gather", digits, status)
        return body if status == 200 else None

    async def _status(self, session: aiohttp.ClientSession, sid: str, form: dict[str, Any],
                      status: str, *, send: bool, **extra: str) -> None:
        call = self.calls[sid]
        now = format_datetime(self.now(), usegmt=True)
        call.update(status=status, date_updated=now)
        if status == "in-progress":
            call["start_time"] = now
        if status in ("completed", *_UNANSWERED):
            call.update(end_time=now, duration=extra.get("CallDuration", "0"))
            self.played[sid].ended = status
        url = form.get("StatusCallback")
        if not send or not url:
            return
        params = self._fields(sid, form) | {"CallStatus": status, "Timestamp": now,
                                            "CallbackSource": "call-progress-events"} | extra
        answer = await self.twilio.post_signed(session, url, params)
        await self._record(sid, "status", status, answer)

    def _fields(self, sid: str, form: dict[str, Any]) -> dict[str, str]:
        return {"CallSid": sid, "AccountSid": self.twilio.account_sid, "From": form["From"],
                "To": form["To"], "Called": form["To"], "Caller": form["From"],
                "Direction": "outbound-api", "ApiVersion": "2010-04-01"}

    async def _record(self, sid: str, kind: str, what: str, answer: int) -> None:
        async with self._changed:
            self.callbacks.append((sid, kind, what, answer))
            self._changed.notify_all()

    async def wait_for(self, done: Callable[[list[tuple[str, str, str, int]]], bool],
                       timeout: float = 10.0) -> None:
        """Until `done(callbacks)` holds (each callback recorded once capmon answered it)."""
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: done(self.callbacks))
        await asyncio.wait_for(enough(), timeout)

    async def wait_ended(self, n: int, timeout: float = 10.0) -> None:
        """Until `n` calls have ended and their last callback has been answered."""
        await self.wait_for(lambda callbacks: sum(
            1 for _sid, kind, what, _a in callbacks
            if kind == "status" and what in ("completed", *_UNANSWERED)) >= n, timeout)
