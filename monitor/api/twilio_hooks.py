"""Twilio webhooks: message status callbacks and inbound messages (STOP/START/HELP).

Both are verified with `X-Twilio-Signature` (HMAC-SHA1 of the public URL and the sorted form
fields under the account's auth token) via twilio's `RequestValidator`; the URL is rebuilt
from `api.public_url`, which is what Twilio was given. Status callbacks arrive out of order
and more than once: a message's status only moves forward, and an asynchronous failure is
applied to the ledger only if that message is still the notification's latest attempt.
An inbound `ACK` or `1` acknowledges the newest unacknowledged alert sent to that number in
the last day; `ACK <code>` (or the code alone) the one whose code the message showed; a
number that was not paged has nothing to acknowledge, and is told so.
An inbound STOP, START or ACK is acted on once per `MessageSid`, so a signed request replayed
later changes nothing, and in the order Twilio received them (the message's `date_created`,
read back from Twilio's REST API, since the webhook carries no time): a START Twilio received
before the number's last STOP never undoes it, however late it arrives. A STOP binds the
number even before any subscription names it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import structlog
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from monitor import ledger
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem
from monitor.config import TwilioSettings
from monitor.delivery import LateFailure, dead_letter_event, fail_accepted_sms
from monitor.ledger import acks
from monitor.runtime import Runtime
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store
from monitor.twilio_rest import TwilioHttp, rest_client

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

STOP_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                        "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
ACK_WORDS = frozenset({"ACK", "1"})
# The code an alert shows ("Reply ACK 4F2A"): the first characters of its key.
ACK_CODE = re.compile(r"^(?:ACK )?([0-9A-F]{4,12})$")
ACK_WINDOW = timedelta(days=1)
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # punctuation, symbols and spaces at either end
STOP_REASON = "sms STOP"
TWIML = "application/xml"
# Twilio waits 15 s for the webhook's answer; the lookup of the message must fit well inside.
_LOOKUP_TIMEOUT_S = 5.0
# Twilio refusing a send because the number replied STOP to it (21610) is the same opt-out,
# recorded by deliver as "unsubscribed: Twilio 21610" (monitor.delivery / consumers.deliver.stages).
_CARRIER_OPT_OUT = "unsubscribed:"


def sms_opt_out(reason: str | None) -> bool:
    """Whether an `unsubscribed` status is the recipient's SMS opt-out (START undoes it)."""
    return reason is not None and (reason == STOP_REASON or reason.startswith(_CARRIER_OPT_OUT))


async def dead_letter(rt: Runtime, failure: LateFailure, now: datetime) -> None:
    """A late failure that ended its notification goes to the dead-letter topic, as deliver
    sends one that ends in a send."""
    if failure.dead:
        await rt.bus.publish(rt.settings.deliver.dlq_topic, failure.notification.key,
                             dead_letter_event(failure.notification, reason=failure.reason,
                                               error=failure.error, attempts=failure.attempts,
                                               at=now))


async def verified_form(request: web.Request) -> dict[str, str]:
    rt = request.app[RUNTIME]
    token = rt.settings.twilio.auth_token
    if token is None:
        raise Problem(404, "Twilio is not configured")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:  # refused before its body is read at all
        log.warning("twilio_signature_rejected", path=request.path)
        raise Problem(403, "Invalid X-Twilio-Signature")
    # Twilio posts application/x-www-form-urlencoded in UTF-8. Anything else is refused before
    # it is parsed: a multipart body without a boundary, a charset Python does not know, or
    # bytes that are not UTF-8 make the form parser raise, which would answer 500.
    if request.content_type != "application/x-www-form-urlencoded" or \
            (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        raise Problem(415, "Unsupported media type",
                      "Twilio webhooks are application/x-www-form-urlencoded in UTF-8")
    try:
        form = await request.post()
    except ValueError:  # UnicodeDecodeError included
        raise Problem(400, "Malformed form body") from None
    params = {k: str(v) for k, v in form.items()}
    url = rt.settings.api.public_url.rstrip("/") + request.path_qs
    if not RequestValidator(token.get_secret_value()).validate(url, params, signature):
        log.warning("twilio_signature_rejected", path=request.path)
        raise Problem(403, "Invalid X-Twilio-Signature")
    return params


@routes.post("/v1/twilio/status")
async def status_callback(request: web.Request) -> web.Response:
    params = await verified_form(request)
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "").lower()
    code = params.get("ErrorCode") or None
    if not sid or not status:
        raise Problem(400, "MessageSid and MessageStatus are required")
    # deliver puts the key and attempt in the callback URL (signed with it), so a callback
    # that overtakes the send's own bookkeeping still finds its notification.
    key = request.query.get("key")
    attempt = request.query.get("attempt", "")
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    failure = None
    async with rt.store.begin() as conn:
        update = await ledger.record_sms_status(
            conn, sid, status, code, now, notification_key=key,
            attempt_no=int(attempt) if attempt.isdigit() else None)
        if update is not None and update.changed and update.failed:
            failure = await fail_accepted_sms(
                conn, update.notification_key, update.attempt_no, code, now,
                max_retry_after_s=rt.settings.deliver.max_retry_after_s)
    if update is None:
        log.info("twilio_status_unknown_sid", sid=sid, status=status)
    if failure is not None:
        log.warning("sms_failed_after_acceptance", key=failure.notification.key,
                    provider_code=code, dead=failure.dead)
        await dead_letter(rt, failure, now)
    return web.Response(status=204)


@routes.post("/v1/twilio/inbound")
async def inbound(request: web.Request) -> web.Response:
    params = await verified_form(request)
    phone, sid = params.get("From", ""), params.get("MessageSid", "")
    word = keyword(params.get("Body", ""))
    rt = request.app[RUNTIME]
    reply = ""
    if word in STOP_WORDS or word in START_WORDS:
        stop = word in STOP_WORDS
        received_at: datetime | None = None
        try:
            received_at = await _received_at(rt.settings.twilio, sid, phone)
        except Problem:
            # A START is ordered against the number's last STOP by Twilio's time and waits
            # without it; a signed STOP is honoured at once, whatever Twilio can tell of it.
            if not stop:
                raise
        now = rt.clock.now()
        async with rt.store.begin() as conn:
            if not await endpoint_store.first_inbound(conn, sid, phone, word,
                                                      received_at or now):
                log.warning("sms_inbound_repeated", sid=sid)
                return _twiml("")
            if not stop and received_at is not None and await endpoint_store.stopped_since(
                    conn, phone, received_at, STOP_WORDS):
                log.warning("sms_start_older_than_stop", sid=sid)
                return _twiml("")
            changed = 0
            if stop:
                # Recorded for the number whether or not it has a subscription yet: nobody
                # may subscribe it later without its START.
                await endpoint_store.record_opt_out(conn, "sms", phone, STOP_REASON, now)
            for sub_id, status, reason in await endpoint_store.subscriptions_for_target(
                    conn, "sms", phone):
                if stop:
                    changed += await endpoint_store.opt_out(conn, sub_id, STOP_REASON, now)
                elif status == sub_store.UNSUBSCRIBED and sms_opt_out(reason):
                    # START undoes only what STOP did, never an operator's or tenant's choice.
                    changed += await sub_store.set_status(conn, sub_id, sub_store.ACTIVE, now)
            if not stop:
                await endpoint_store.clear_opt_out(conn, "sms", phone)
        log.info("sms_keyword", keyword="stop" if stop else "start",
                 subscriptions_changed=changed)
        # Twilio's own opt-out handling sends the confirmation text; don't send a second.
    elif word in ACK_WORDS or ACK_CODE.match(word):
        reply = await _acknowledge(request, phone, sid, word)
    elif word in HELP_WORDS:
        reply = (f"capmon grid alerts for your utility. Reply STOP to unsubscribe, START to "
                 f"resume. {rt.settings.api.public_url}")
    return _twiml(reply)


async def _acknowledge(request: web.Request, phone: str, sid: str, word: str) -> str:
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    code = ACK_CODE.match(word)
    async with rt.store.begin() as conn:
        if not await endpoint_store.first_inbound(conn, sid, phone, "ACK", now):
            log.warning("sms_inbound_repeated", sid=sid)
            return ""
        keys = await acks.paged_phone(conn, phone, now, ACK_WINDOW,
                                      None if code is None else code.group(1).lower())
        for key in keys:
            try:
                await acks.acknowledge(conn, key, phone, acks.Via.SMS, now)
            except acks.AckRefused:
                continue  # below its subscription's ack_severity: try the next one
            log.info("acknowledged", notification_key=key, via="sms")
            return f"capmon: acknowledged, you have it ({acks.ack_code(key)})."
    log.warning("sms_ack_unmatched", code=None if code is None else code.group(1))
    return "capmon: nothing sent to this number is waiting for an acknowledgement."


async def _received_at(settings: TwilioSettings, sid: str, phone: str) -> datetime:
    """When Twilio received this inbound message: its `date_created` in Twilio's REST API
    (the webhook carries no time of its own). 400 if Twilio has no such inbound message from
    `phone`, 503 if Twilio cannot say now."""
    unavailable = Problem(503, "Twilio is unavailable",
                          "the message's time of receipt cannot be read from Twilio yet",
                          headers={"Retry-After": "30"})
    if settings.account_sid is None or settings.auth_token is None:
        log.warning("twilio_lookup_unavailable", sid=sid, error="twilio.account_sid not set")
        raise unavailable
    http = TwilioHttp(_LOOKUP_TIMEOUT_S)
    try:
        client = rest_client(settings.account_sid, settings.auth_token, http,
                             settings.api_base_url)
        message = await client.messages(sid).fetch_async()
    except TwilioRestException as exc:
        if exc.status == 404:
            log.warning("twilio_message_unknown", sid=sid)
            raise Problem(400, "Unknown MessageSid",
                          "Twilio has no message with this MessageSid") from None
        log.warning("twilio_lookup_unavailable", sid=sid, error=f"Twilio {exc.code}")
        raise unavailable from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("twilio_lookup_unavailable", sid=sid, error=type(exc).__name__)
        raise unavailable from None
    finally:
        await http.close()
    at: datetime | None = message.date_created
    if message.direction != "inbound" or message.from_ != phone or at is None:
        log.warning("twilio_message_unknown", sid=sid)
        raise Problem(400, "MessageSid is not this inbound message")
    return at


def _twiml(reply: str) -> web.Response:
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
            + (f"<Message>{escape(reply)}</Message>" if reply else "") + "</Response>")
    return web.Response(text=body, content_type=TWIML)


def keyword(body: str) -> str:
    """The message as a keyword, read as Twilio's opt-out handling reads it: the whole body,
    case, surrounding whitespace and punctuation ignored (`Stop!`, ` stop. `, `Stop  all`).
    A sentence is not a keyword: "Yes, stop" must not opt in, nor "End of shift" out."""
    return " ".join(_EDGES.sub("", body).upper().split())


# The spec of every Twilio callback: its signature header and its form.
SIGNATURE = [{"name": "X-Twilio-Signature", "in": "header", "required": True,
              "description": "Twilio's signature of the public URL and the form",
              "schema": {"type": "string"}}]


def twilio_form(*fields: str) -> dict[str, Any]:
    return {"type": "object", "description": "Twilio's form fields",
            "properties": {f: {"type": "string"} for f in fields}}


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    # 403: not signed by Twilio; 404: Twilio is not configured here.
    spec.operation("POST", "/v1/twilio/status", summary="Twilio message status callback",
                   tags=("twilio",), auth=None, parameters=SIGNATURE,
                   form=twilio_form("MessageSid", "MessageStatus", "ErrorCode"),
                   responses={204: None}, problems=(400, 403, 404, 415))
    spec.operation("POST", "/v1/twilio/inbound",
                   summary="Inbound SMS: STOP/START/HELP update the subscription",
                   tags=("twilio",), auth=None, parameters=SIGNATURE,
                   form=twilio_form("MessageSid", "From", "Body"),
                   responses={200: {"type": "string"}},
                   content_type=TWIML, problems=(400, 403, 404, 415, 503))
