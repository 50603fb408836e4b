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

import asyncio
from dataclasses import dataclass

import aiohttp
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from consumers.notifiers.base import Delivery, SendOutcome
from consumers.notifiers.sms import twilio_failure
from monitor import voice_script
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.store.endpoints import Endpoint
from monitor.twilio_rest import TwilioHttp, rest_client

# What Twilio reports while a call runs; "completed" also stands for busy, no-answer, failed.
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True, repr=False)
class VoiceConfig:
    account_sid: str
    auth_token: SecretStr
    public_url: str
    from_number: str
    api_base_url: str | None = None
    timeout_s: float = 15.0
    # How long a call rings before Twilio gives up with no-answer (before most voicemail
    # picks up at about 25 s, detection takes it from there).
    ring_s: int = 30
    # Twilio queues calls above the account's calls-per-second; keep few in flight.
    max_concurrency: int = 5

    def __post_init__(self) -> None:
        if not self.from_number:
            raise ConfigError("voice calls need twilio.from_number")

    def __repr__(self) -> str:
        return f"VoiceConfig(account_sid={self.account_sid!r}, auth_token=**********)"

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
        t = settings.twilio
        if not (t.account_sid and t.auth_token and t.from_number):
            return None
        return cls(account_sid=t.account_sid, auth_token=t.auth_token,
                   public_url=settings.api.public_url, from_number=t.from_number,
                   api_base_url=t.api_base_url)


class VoiceNotifier:
    channel = "voice"

    def __init__(self, config: VoiceConfig) -> None:
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

    def twiml(self, delivery: Delivery) -> str:
        n = delivery.notification
        return voice_script.call(n, self.config.gather_url(n.key))

    async def send(self, delivery: Delivery) -> SendOutcome:
        assert self._client is not None, "VoiceNotifier.start() was not awaited"
        key = delivery.notification.key
        try:
            async with self._slots, asyncio.timeout(self.config.timeout_s):
                call = await self._client.calls.create_async(
                    to=delivery.endpoint.target, from_=self.config.from_number,
                    twiml=self.twiml(delivery),
                    status_callback=self.config.status_callback_url(key, delivery.attempt_no),
                    status_callback_event=STATUS_EVENTS, status_callback_method="POST",
                    machine_detection="DetectMessageEnd", async_amd="true",
                    async_amd_status_callback=self.config.amd_url(key),
                    async_amd_status_callback_method="POST", timeout=self.config.ring_s)
        except TwilioRestException as exc:
            return twilio_failure(exc.code, exc.status, exc.msg)
        except TimeoutError:
            return SendOutcome.failed("timeout", "Twilio did not answer in time", retriable=True)
        except aiohttp.ClientError as exc:
            return SendOutcome.failed("connect", type(exc).__name__, retriable=True)
        return SendOutcome.delivered(status_code=201, provider_id=str(call.sid),
                                     detail=str(call.status or ""))
