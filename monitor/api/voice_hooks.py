"""Twilio's callbacks for voice calls: status, answering-machine detection, keypresses.

Each is signed like the SMS callbacks (`twilio_hooks.verified_form`), and the call it names
must be the one placed for the notification key in its URL: the status callback is told the
key and attempt by the URL deliver gave Twilio (signed with it), so the first callback of a
call that overtakes the send's own bookkeeping records it; the answering-machine and keypress
callbacks are refused (403) unless their `CallSid` is that key's call, so a call to another
number cannot acknowledge this key.

- status: completed is the delivery the send already recorded (counted as answered, or as
  voicemail when a machine took it); busy, no-answer, failed and canceled undo it: called again
  after the channel's retry interval while its retries last, else dead and dead-lettered.
- amd: a machine (or fax) has the call's TwiML replaced by the message said once.
- gather: 1 acknowledges (as the number called, via voice), 9 opts the number out of calls
  the way an SMS STOP opts it out of texts, any other key hears the message again.
"""

from __future__ import annotations

from datetime import datetime

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection
from twilio.base.exceptions import TwilioRestException

from monitor import ledger, voice_script
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem
from monitor.api.twilio_hooks import SIGNATURE, TWIML, dead_letter, twilio_form, verified_form
from monitor.delivery import fail_accepted_call
from monitor.ledger import acks
from monitor.metrics import VOICE_CALLS, VOICE_KEYS
from monitor.notifications import Notification
from monitor.runtime import Runtime
from monitor.store import endpoints as endpoint_store
from monitor.twilio_rest import TwilioHttp, rest_client

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

STOP_REASON = "voice 9"
# Twilio waits 15 s for a callback's answer; replacing a machine's TwiML must fit inside.
_UPDATE_TIMEOUT_S = 5.0
_OUTCOME = {"busy": "busy", "no-answer": "no_answer", "failed": "failed",
            "canceled": "canceled"}


@routes.post("/v1/twilio/voice/status")
async def status_callback(request: web.Request) -> web.Response:
    params = await verified_form(request)
    sid, status = params.get("CallSid", ""), params.get("CallStatus", "").lower()
    if not sid or not status:
        raise Problem(400, "CallSid and CallStatus are required")
    code = params.get("ErrorCode") or None
    key, attempt = request.query.get("key"), request.query.get("attempt", "")
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    failure = None
    async with rt.store.begin() as conn:
        update = await ledger.record_call_status(
            conn, sid, status, code, now, answered_by=params.get("AnsweredBy") or None,
            notification_key=key, attempt_no=int(attempt) if attempt.isdigit() else None)
        if update is not None and update.changed and update.unanswered:
            failure = await fail_accepted_call(conn, update.notification_key,
                                               update.attempt_no, update.status,
                                               update.error_code, now)
    if update is None:
        log.info("twilio_call_unknown_sid", sid=sid, status=status)
        return web.Response(status=204)
    if update.changed and (update.status == "completed" or update.unanswered):
        outcome = ("voicemail" if update.machine else "answered") \
            if update.status == "completed" else _OUTCOME[update.status]
        VOICE_CALLS.labels(outcome=outcome).inc()
        log.info("voice_call_ended", key=update.notification_key, attempt=update.attempt_no,
                 outcome=outcome, provider_code=update.error_code)
    if failure is not None:
        log.warning("voice_call_unanswered", key=failure.notification.key, dead=failure.dead,
                    error=failure.error)
        await dead_letter(rt, failure, now)
    return web.Response(status=204)


async def _placed_for(conn: AsyncConnection, key: str, sid: str) -> Notification:
    """The notification whose call `sid` is, or 403: a callback naming another call (or one
    we never placed) must not act on this key."""
    placed = await ledger.call_of(conn, sid) if sid else None
    entry = await ledger.get(conn, key) if placed is not None and placed[0] == key else None
    if entry is None:
        log.warning("twilio_call_mismatch", key=key[:40], sid=sid[:64])
        raise Problem(403, "Not this notification's call",
                      "CallSid is not the call placed for this notification")
    return entry.notification()


@routes.post("/v1/twilio/voice/amd")
async def machine_detection(request: web.Request) -> web.Response:
    params = await verified_form(request)
    sid, answered_by = params.get("CallSid", ""), params.get("AnsweredBy", "")
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    async with rt.store.begin() as conn:
        n = await _placed_for(conn, request.query.get("key", ""), sid)
        update = await ledger.record_call_status(conn, sid, "in-progress", None, now,
                                                 answered_by=answered_by or None)
    if update is not None and update.machine:
        await _leave_message(rt, sid, n)
    return web.Response(status=204)


async def _leave_message(rt: Runtime, sid: str, n: Notification) -> None:
    """Replace the running call's TwiML with the message said once (a machine cannot press a
    key). If Twilio refuses (the call ended meanwhile), the call goes on as it was."""
    t = rt.settings.twilio
    assert t.account_sid is not None and t.auth_token is not None  # verified_form checked
    http = TwilioHttp(_UPDATE_TIMEOUT_S)
    try:
        client = rest_client(t.account_sid, t.auth_token, http, t.api_base_url)
        await client.calls(sid).update_async(twiml=voice_script.voicemail(n))
        log.info("voice_voicemail", key=n.key)
    except TwilioRestException as exc:
        log.warning("voice_voicemail_refused", key=n.key, provider_code=exc.code)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("voice_voicemail_refused", key=n.key, error=type(exc).__name__)
    finally:
        await http.close()


@routes.post("/v1/twilio/voice/gather")
async def gather(request: web.Request) -> web.Response:
    params = await verified_form(request)
    key, digits = request.query.get("key", ""), params.get("Digits", "").strip()
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    async with rt.store.begin() as conn:
        n = await _placed_for(conn, key, params.get("CallSid", ""))
        phone = getattr(n.channel, "phone", "")
        if digits == voice_script.ACK_DIGIT:
            action, text = await _acknowledge(conn, n, phone, now)
            twiml = voice_script.reply(text)
        elif digits == voice_script.STOP_DIGIT:
            await _opt_out(conn, phone, now)
            action = "opted_out"
            twiml = voice_script.reply("You will get no more capmon calls at this number. "
                                       "Goodbye.")
        else:
            action = "repeated"
            twiml = voice_script.again(n, rt.settings.api.public_url.rstrip("/")
                                       + request.path_qs)
    VOICE_KEYS.labels(action=action).inc()
    log.info("voice_keypress", key=n.key, action=action)
    return web.Response(text=twiml, content_type=TWIML)


async def _acknowledge(conn: AsyncConnection, n: Notification, phone: str,
                       now: datetime) -> tuple[str, str]:
    if not n.acknowledgeable:
        return "refused", "This alert does not take acknowledgements. Goodbye."
    try:
        await acks.acknowledge(conn, n.key, phone, acks.Via.VOICE, now)
    except acks.AckRefused as exc:
        if exc.first is not None:
            return "already", (f"This alert was already acknowledged by "
                               f"{_say_who(exc.first.by)}, by {exc.first.via}. Goodbye.")
        if exc.reason == "below_ack_severity":
            return "refused", ("This alert is below the severity your subscription takes "
                               "acknowledgements for. Goodbye.")
        return "refused", "This alert cannot be acknowledged. Goodbye."
    log.info("acknowledged", notification_key=n.key, via="voice")
    return "acknowledged", "Acknowledged. Thank you."


def _say_who(by: str) -> str:
    # A phone number is read digit by digit, not as a figure in the billions.
    digits = by.removeprefix("+")
    return " ".join(digits) if by.startswith("+") and digits.isdigit() else by


async def _opt_out(conn: AsyncConnection, phone: str, now: datetime) -> None:
    """The number's opt-out of calls, as SMS STOP is of texts: recorded for the number (no
    subscription may name it for calls without the recipient) and every voice subscription
    to it unsubscribed."""
    await endpoint_store.record_opt_out(conn, "voice", phone, STOP_REASON, now)
    for sub_id, _status, _reason in await endpoint_store.subscriptions_for_target(
            conn, "voice", phone):
        await endpoint_store.opt_out(conn, sub_id, STOP_REASON, now)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    key = [{"name": "key", "in": "query", "required": True, "schema": {"type": "string"},
            "description": "the notification the call was placed for"}]

    tags = ("twilio",)
    spec.operation("POST", "/v1/twilio/voice/status", summary="Twilio call status callback",
                   tags=tags, auth=None, parameters=SIGNATURE,
                   form=twilio_form("CallSid", "CallStatus", "AnsweredBy", "ErrorCode"),
                   responses={204: None}, problems=(400, 403, 404, 415))
    spec.operation("POST", "/v1/twilio/voice/amd",
                   summary="Answering machine detection: a machine is left the message once",
                   tags=tags, auth=None, parameters=SIGNATURE + key,
                   form=twilio_form("CallSid", "AnsweredBy"), responses={204: None},
                   problems=(400, 403, 404, 415))
    spec.operation("POST", "/v1/twilio/voice/gather",
                   summary="A key pressed on a call: 1 acknowledges, 9 stops calls",
                   tags=tags, auth=None, parameters=SIGNATURE + key,
                   form=twilio_form("CallSid", "Digits"), responses={200: {"type": "string"}},
                   content_type=TWIML, problems=(400, 403, 404, 415))
