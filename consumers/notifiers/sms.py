"""SMS channel: Twilio Programmable Messaging through the official async client.

One message per notification, one GSM-7 segment with a link to the details (sms_text), sent
from a Messaging Service (preferred: sender pool, opt-out handling) or a From number, with a
status callback so delivery is tracked after Twilio accepts it. Twilio's error codes decide
the verdict (monitor.delivery.TWILIO_CODES).

An attempt whose earlier try never settled (its deliver process was killed mid-send) may have
reached Twilio already, and a text sent twice is one a person reads twice: before sending it
again, Twilio's message log is asked whether a message carrying this notification's link went
to the number (`_sent_already`). If Twilio cannot say, the text is sent: a missed or late EEA
costs more than a duplicate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC

import aiohttp
import structlog
from pydantic import SecretStr
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from consumers.notifiers.base import Delivery, EndpointAction, SendOutcome
from consumers.notifiers.sms_text import render_sms
from monitor.config import Settings
from monitor.delivery import twilio_code
from monitor.errors import ConfigError
from monitor.links import detail_url
from monitor.metrics import SMS_FATE_CHECKS
from monitor.store.endpoints import Endpoint
from monitor.twilio_rest import TwilioHttp, rest_client

log = structlog.get_logger(__name__)

# How far back Twilio's log is read for an unsettled attempt: the most recent messages come
# first, and the one looked for was sent within a lease or two of now.
_LOG_LIMIT = 200
_ACTIONS = {"invalid_contact": EndpointAction.INVALID_CONTACT,
            "unsubscribe": EndpointAction.UNSUBSCRIBE}


@dataclass(frozen=True, repr=False)
class SmsConfig:
    account_sid: str
    auth_token: SecretStr
    public_url: str
    messaging_service_sid: str | None = None
    from_number: str | None = None
    api_base_url: str | None = None
    timeout_s: float = 15.0
    # Twilio answers 20429 past its concurrency limit; stay under it.
    max_concurrency: int = 20

    def __post_init__(self) -> None:
        if not (self.messaging_service_sid or self.from_number):
            raise ConfigError("twilio needs messaging_service_sid or from_number")

    def __repr__(self) -> str:
        return f"SmsConfig(account_sid={self.account_sid!r}, auth_token=**********)"

    def status_callback_url(self, key: str, attempt_no: int) -> str:
        return f"{self.public_url.rstrip('/')}/v1/twilio/status?key={key}&attempt={attempt_no}"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsConfig | None:
        t = settings.twilio
        if not (t.account_sid and t.auth_token):
            return None
        return cls(account_sid=t.account_sid, auth_token=t.auth_token,
                   public_url=settings.api.public_url,
                   messaging_service_sid=t.messaging_service_sid, from_number=t.from_number,
                   api_base_url=t.api_base_url)


class SmsNotifier:
    channel = "sms"

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self._http: TwilioHttp | None = None
        self._client: Client | None = None
        self._slots = asyncio.Semaphore(config.max_concurrency)

    async def start(self) -> None:
        self._http = TwilioHttp(self.config.timeout_s)
        self._client = rest_client(self.config.account_sid, self.config.auth_token, self._http,
                                   self.config.api_base_url)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send_endpoint_disabled(self, to: str, endpoint: Endpoint,
                                     why: str) -> SendOutcome | None:
        return None  # an admin contact is a mail address

    def text(self, delivery: Delivery) -> str:
        n = delivery.notification
        return render_sms(n, detail_url(self.config.public_url, n.key))

    async def send(self, delivery: Delivery) -> SendOutcome:
        assert self._client is not None, "SmsNotifier.start() was not awaited"
        if delivery.unsettled:
            sent = await self._sent_already(delivery)
            if sent is not None:
                return sent
        kwargs: dict[str, object] = {"to": delivery.endpoint.target,
                                     "body": self.text(delivery),
                                     "status_callback": self.config.status_callback_url(
                                         delivery.notification.key, delivery.attempt_no)}
        if self.config.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.config.messaging_service_sid
        else:
            kwargs["from_"] = self.config.from_number
        try:
            async with self._slots, asyncio.timeout(self.config.timeout_s):
                message = await self._client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            return twilio_failure(exc.code, exc.status, exc.msg)
        except TimeoutError:
            return SendOutcome.failed("timeout", "Twilio did not answer in time", retriable=True)
        except aiohttp.ClientError as exc:
            return SendOutcome.failed("connect", type(exc).__name__, retriable=True)
        return SendOutcome.delivered(status_code=201, provider_id=str(message.sid),
                                     detail=str(message.status or ""))

    async def _sent_already(self, delivery: Delivery) -> SendOutcome | None:
        """The message an unsettled try of this attempt sent, as this attempt's delivery, or
        None when there is none or Twilio cannot say (then the text is sent)."""
        key = delivery.notification.key
        reported = sorted(sid for sid, n in delivery.known_ids.items()
                          if n == delivery.attempt_no)
        if reported:  # a status callback for that try arrived: Twilio took it
            return self._found(key, reported[0], "", None, status_code=None)
        try:
            message = await self._find(delivery)
        except (TwilioException, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            SMS_FATE_CHECKS.labels(result="unavailable").inc()
            log.warning("sms_fate_check", key=key, result="unavailable",
                        error=type(exc).__name__)
            return None
        if message is None:
            SMS_FATE_CHECKS.labels(result="not_found").inc()
            log.info("sms_fate_check", key=key, result="not_found")
            return None
        sid, status, code = message
        return self._found(key, sid, status, code, status_code=200)

    def _found(self, key: str, sid: str, status: str, code: int | None, *,
               status_code: int | None) -> SendOutcome:
        SMS_FATE_CHECKS.labels(result="found").inc()
        log.info("sms_fate_check", key=key, result="found", sid=sid, status=status or None)
        # The message's error code travels as the provider code: a failed message found in
        # the log then fails the attempt as its callback would have (deliver/stages.py).
        return SendOutcome.delivered(status_code=status_code, provider_id=sid, detail=status,
                                     provider_code=str(code) if code else None)

    async def _find(self, delivery: Delivery) -> tuple[str, str, int | None] | None:
        """SID, status and error code of a message in Twilio's log carrying the detail link,
        sent to the endpoint from this sender since the notification was decided, that no
        earlier attempt sent."""
        assert self._client is not None
        earlier = {sid for sid, n in delivery.known_ids.items() if n < delivery.attempt_no}
        link = detail_url(self.config.public_url, delivery.notification.key)
        sender: dict[str, object] = ({} if self.config.messaging_service_sid
                                     else {"from_": self.config.from_number})
        # Twilio filters on the GMT day of DateSent.
        day = delivery.notification.decided_at.astimezone(UTC).date().isoformat()
        async with self._slots, asyncio.timeout(self.config.timeout_s):
            messages = await self._client.messages.list_async(
                to=delivery.endpoint.target, date_sent_after=day, limit=_LOG_LIMIT,
                **sender)
        for m in messages:
            if m.sid in earlier or not str(m.direction or "").startswith("outbound"):
                continue
            if self.config.messaging_service_sid and \
                    m.messaging_service_sid != self.config.messaging_service_sid:
                continue
            if link in (m.body or "").split():
                return str(m.sid), str(m.status or ""), m.error_code
        return None


def twilio_failure(code: int | None, status: int | None, msg: str | None) -> SendOutcome:
    """A Twilio REST error as the outcome of a send (SMS and voice alike)."""
    meaning = twilio_code(code, status)
    detail = f"Twilio {code}: {(msg or '').strip()[:200]}" if code else f"Twilio HTTP {status}"
    return SendOutcome.failed(meaning.reason, detail, retriable=meaning.retriable,
                              status_code=status, provider_code=str(code) if code else None,
                              action=_ACTIONS.get(meaning.contact, EndpointAction.NONE))
