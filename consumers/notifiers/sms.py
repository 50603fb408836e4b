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
from twilio.base.exceptions import TwilioException

from consumers.notifiers.base import Delivery, SendOutcome
from consumers.notifiers.sms_text import render_sms
from consumers.notifiers.twilio_account import TwilioAccount, TwilioNotifier
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.links import detail_url
from monitor.metrics import SMS_FATE_CHECKS

log = structlog.get_logger(__name__)

# How far back Twilio's log is read for an unsettled attempt: the most recent messages come
# first, and the one looked for was sent within a lease or two of now.
_LOG_LIMIT = 200


@dataclass(frozen=True, repr=False, kw_only=True)
class SmsConfig(TwilioAccount):
    messaging_service_sid: str | None = None
    from_number: str | None = None
    # Twilio answers 20429 past its concurrency limit; stay under it.
    max_concurrency: int = 20

    def __post_init__(self) -> None:
        if not (self.messaging_service_sid or self.from_number):
            raise ConfigError("twilio needs messaging_service_sid or from_number")

    def status_callback_url(self, key: str, attempt_no: int) -> str:
        return f"{self.public_url.rstrip('/')}/v1/twilio/status?key={key}&attempt={attempt_no}"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsConfig | None:
        t = settings.twilio
        return cls._from_settings(settings, messaging_service_sid=t.messaging_service_sid,
                                  from_number=t.from_number)


class SmsNotifier(TwilioNotifier[SmsConfig]):
    channel = "sms"

    def text(self, delivery: Delivery) -> str:
        n = delivery.notification
        return render_sms(n, detail_url(self.config.public_url, n.key))

    async def send(self, delivery: Delivery) -> SendOutcome:
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
        return await self._create(lambda client: client.messages.create_async(**kwargs))

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

