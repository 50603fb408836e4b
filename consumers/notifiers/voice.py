"""Voice channel: a Twilio call that reads the alert and takes 1 to acknowledge, 9 to stop.

The call is placed from the account's number with its TwiML inline (monitor.voice_script):
the message said twice inside a one-digit Gather whose keypress Twilio posts to the API
(`/v1/twilio/voice/gather`). Twilio's asynchronous answering-machine detection runs beside
it and reports to `/v1/twilio/voice/amd`, which has a machine left the message once instead.
The call's status callbacks (`/v1/twilio/voice/status`) settle it: completed is delivered,
busy, no answer or failed is called again after the subscription's `retry_interval` while
its `retries` last (monitor.delivery.fail_accepted_call). Twilio accepting the call is this
attempt's delivery, as accepting a text is for SMS; a call that is not answered is undone by
its callback.

A claim whose earlier try never settled is called again without asking Twilio's log first:
a second call is a ring, where a second text is a message read twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from consumers.notifiers.base import Delivery, SendOutcome
from consumers.notifiers.twilio_account import TwilioAccount, TwilioNotifier
from monitor import voice_script
from monitor.config import Settings
from monitor.errors import ConfigError

# What Twilio reports while a call runs; "completed" also stands for busy, no-answer, failed.
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True, repr=False, kw_only=True)
class VoiceConfig(TwilioAccount):
    from_number: str
    # How long a call rings before Twilio gives up with no-answer (before most voicemail
    # picks up at about 25 s, detection takes it from there).
    ring_s: int = 30
    # Twilio queues calls above the account's calls-per-second; keep few in flight.
    max_concurrency: int = 5

    def __post_init__(self) -> None:
        if not self.from_number:
            raise ConfigError("voice calls need twilio.from_number")

    def _url(self, path: str, query: str) -> str:
        return f"{self.public_url.rstrip('/')}/v1/twilio/voice/{path}?{query}"

    def status_callback_url(self, key: str, attempt_no: int) -> str:
        return self._url("status", f"key={key}&attempt={attempt_no}")

    def gather_url(self, key: str) -> str:
        return self._url("gather", f"key={key}")

    def amd_url(self, key: str) -> str:
        return self._url("amd", f"key={key}")

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceConfig | None:
        if not settings.twilio.from_number:
            return None
        return cls._from_settings(settings, from_number=settings.twilio.from_number)


class VoiceNotifier(TwilioNotifier[VoiceConfig]):
    channel = "voice"

    def twiml(self, delivery: Delivery) -> str:
        n = delivery.notification
        return voice_script.call(n, self.config.gather_url(n.key))

    async def send(self, delivery: Delivery) -> SendOutcome:
        key = delivery.notification.key
        return await self._create(lambda client: client.calls.create_async(
            to=delivery.endpoint.target, from_=self.config.from_number,
            twiml=self.twiml(delivery),
            status_callback=self.config.status_callback_url(key, delivery.attempt_no),
            status_callback_event=STATUS_EVENTS, status_callback_method="POST",
            machine_detection="DetectMessageEnd", async_amd="true",
            async_amd_status_callback=self.config.amd_url(key),
            async_amd_status_callback_method="POST", timeout=self.config.ring_s))
