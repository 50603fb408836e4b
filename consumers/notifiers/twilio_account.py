"""What the Twilio channels (SMS, voice) share: the account they send from, the REST client
opened on `start` and closed on `close`, and how one create call on Twilio's REST API becomes
the outcome of a send (Twilio accepting a message or a call is the attempt's delivery; its
status callbacks may undo it later)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import aiohttp
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from consumers.notifiers.base import EndpointAction, SendOutcome
from monitor.config import Settings
from monitor.delivery import twilio_code
from monitor.store.endpoints import Endpoint
from monitor.twilio_rest import TwilioHttp, rest_client

_ACTIONS = {"invalid_contact": EndpointAction.INVALID_CONTACT,
            "unsubscribe": EndpointAction.UNSUBSCRIBE}


@dataclass(frozen=True, repr=False, kw_only=True)
class TwilioAccount:
    account_sid: str
    auth_token: SecretStr
    public_url: str
    api_base_url: str | None = None
    timeout_s: float = 15.0
    # Each channel keeps its own default: Twilio's limits differ for messages and calls.
    max_concurrency: int

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account_sid={self.account_sid!r}, auth_token=**********)"

    @classmethod
    def _from_settings(cls, settings: Settings, **channel: Any) -> Self | None:
        """The account of the settings with the channel's own fields; None without one."""
        t = settings.twilio
        if not (t.account_sid and t.auth_token):
            return None
        return cls(account_sid=t.account_sid, auth_token=t.auth_token,
                   public_url=settings.api.public_url, api_base_url=t.api_base_url, **channel)


C = TypeVar("C", bound=TwilioAccount)


class TwilioNotifier(Generic[C]):
    def __init__(self, config: C) -> None:
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

    async def _create(self, create: Callable[[Client], Awaitable[Any]]) -> SendOutcome:
        """`create` (a message or a call) within a slot and the timeout, as the outcome."""
        assert self._client is not None, f"{type(self).__name__}.start() was not awaited"
        try:
            async with self._slots, asyncio.timeout(self.config.timeout_s):
                created = await create(self._client)
        except TwilioRestException as exc:
            return twilio_failure(exc.code, exc.status, exc.msg)
        except TimeoutError:
            return SendOutcome.failed("timeout", "Twilio did not answer in time", retriable=True)
        except aiohttp.ClientError as exc:
            return SendOutcome.failed("connect", type(exc).__name__, retriable=True)
        return SendOutcome.delivered(status_code=201, provider_id=str(created.sid),
                                     detail=str(created.status or ""))


def twilio_failure(code: int | None, status: int | None, msg: str | None) -> SendOutcome:
    """A Twilio REST error as the outcome of a send (SMS and voice alike)."""
    meaning = twilio_code(code, status)
    detail = f"Twilio {code}: {(msg or '').strip()[:200]}" if code else f"Twilio HTTP {status}"
    return SendOutcome.failed(meaning.reason, detail, retriable=meaning.retriable,
                              status_code=status, provider_code=str(code) if code else None,
                              action=_ACTIONS.get(meaning.contact, EndpointAction.NONE))
