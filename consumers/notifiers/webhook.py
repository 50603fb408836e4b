"""Webhook channel: Standard Webhooks over pooled aiohttp connections.

Each request carries `webhook-id` (the notification key, identical across retries),
`webhook-timestamp` (this attempt) and `webhook-signature` (`v1,` HMAC-SHA256 of
`id.timestamp.body` under each valid `whsec_` secret: two during a rotation). The body is the
notification as a structured-mode CloudEvent, signed over the exact bytes sent. Redirects are
never followed; the whole attempt has one timeout; the SSRF guard runs at connect time.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from standardwebhooks import Webhook

from consumers.notifiers.base import Delivery, EndpointAction, SendOutcome
from monitor.clock import Clock
from monitor.config import Settings, WebhookSettings
from monitor.netguard import ForbiddenAddress, GuardedResolver, UnsafeUrlError, check_url_syntax
from monitor.notifications import Notification, notification_cloudevent_json
from monitor.retry_after import parse_retry_after
from monitor.store.endpoints import Endpoint

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SOURCE = "/capmon/deliver"
# Codes that mean "slow down": honour Retry-After, count toward the circuit breaker.
_THROTTLE = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class WebhookConfig:
    timeout_s: float = 15.0
    allow_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    max_connections: int = 256
    max_connections_per_host: int = 32
    user_agent: str = "capmon-webhooks/0.1"

    @functools.cached_property
    def guard(self) -> WebhookSettings:
        """The SSRF policy, checked by the same code as at subscribe time (monitor.netguard)."""
        return WebhookSettings(timeout_s=self.timeout_s, allow_hosts=self.allow_hosts,
                               allow_http=self.allow_http)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookConfig:
        return cls(timeout_s=settings.webhook.timeout_s, allow_hosts=settings.webhook.allow_hosts,
                   allow_http=settings.webhook.allow_http)


def webhook_body(n: Notification) -> bytes:
    """The CloudEvent JSON a receiver gets: summary, severity, and the structured conditions."""
    return notification_cloudevent_json(n, SOURCE)


@functools.lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    # Building one decodes the secret: once per secret, not once per send.
    return Webhook(secret)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature, by the Standard Webhooks reference library."""
    signature: str = _signer(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC),
                                          body.decode("utf-8"))
    return signature


def signed_headers(secrets: tuple[str, ...], msg_id: str, timestamp: int,
                   body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
        "content-type": CONTENT_TYPE,
    }


def classify(status: int, headers: aiohttp.typedefs.LooseHeaders | None,
             now: datetime) -> SendOutcome:
    """The retry verdict for an HTTP answer (the table in docs/deliver.md, Webhooks)."""
    if 200 <= status < 300:  # first: a success needs none of the headers
        return SendOutcome.delivered(status_code=status)
    h = dict(headers or {})
    lower = {str(k).lower(): str(v) for k, v in h.items()}
    if lower.get("webhook-delivery", "").strip().lower() == "abort-message":
        return SendOutcome.failed("aborted", "receiver asked to stop retrying this message",
                                  retriable=False, status_code=status)
    if 300 <= status < 400:
        return SendOutcome.failed("redirect", "redirects are not followed", retriable=True,
                                  status_code=status)
    if status == 410:
        return SendOutcome.failed("gone", "endpoint answered 410 Gone: disabling it",
                                  retriable=False, status_code=status,
                                  action=EndpointAction.DISABLE)
    if status in _THROTTLE:
        reason = "rate_limited" if status == 429 else "server"
        return SendOutcome.failed(reason, f"HTTP {status}", retriable=True, status_code=status,
                                  retry_after=parse_retry_after(lower.get("retry-after"), now))
    if status in (401, 403):
        return SendOutcome.failed("auth", f"HTTP {status}", retriable=True, status_code=status)
    reason = "client" if status < 500 else "server"
    return SendOutcome.failed(reason, f"HTTP {status}", retriable=True, status_code=status)


class WebhookNotifier:
    channel = "webhook"

    def __init__(self, config: WebhookConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        # URL syntax verdicts by target: the same endpoints are sent to again and again.
        self._checked: dict[str, str | None] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.config.guard),
            limit=self.config.max_connections,
            limit_per_host=self.config.max_connections_per_host,
            ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            headers={"User-Agent": self.config.user_agent}, cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_endpoint_disabled(self, to: str, endpoint: Endpoint,
                                     why: str) -> SendOutcome | None:
        return None  # an admin contact is a mail address

    def _refusal(self, url: str) -> str | None:
        """Why the SSRF guard refuses `url` on its face, or None (addresses are checked
        again at connect time, by the resolver)."""
        if url not in self._checked:
            if len(self._checked) >= 10_000:
                self._checked.clear()
            try:
                check_url_syntax(url, self.config.guard)
                self._checked[url] = None
            except UnsafeUrlError as exc:
                self._checked[url] = str(exc)
        return self._checked[url]

    async def send(self, delivery: Delivery) -> SendOutcome:
        assert self._session is not None, "WebhookNotifier.start() was not awaited"
        endpoint = delivery.endpoint
        if not endpoint.secrets:
            return SendOutcome.failed("config", "subscription has no signing secret",
                                      retriable=False)
        refused = self._refusal(endpoint.target)
        if refused is not None:
            return SendOutcome.failed("forbidden_address", refused, retriable=False)
        body = webhook_body(delivery.notification)
        now = self._clock.now()
        headers = signed_headers(endpoint.secrets, delivery.notification.key,
                                 int(now.timestamp()), body)
        try:
            async with self._session.post(endpoint.target, data=body, headers=headers,
                                          allow_redirects=False) as resp:
                # Drain a little so the connection can go back to the pool; ignore the rest.
                await resp.content.read(64 * 1024)
                return classify(resp.status, resp.headers, self._clock.now())
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, ForbiddenAddress):
                return SendOutcome.failed("forbidden_address", str(exc.os_error), retriable=False)
            return SendOutcome.failed("connect", f"DNS: {type(exc.os_error).__name__}",
                                      retriable=True)
        except TimeoutError:
            return SendOutcome.failed("timeout", f"no answer within {self.config.timeout_s:g}s",
                                      retriable=True)
        except aiohttp.ClientConnectorError as exc:
            return SendOutcome.failed("connect", f"connect failed: {exc.strerror or 'refused'}",
                                      retriable=True)
        except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
            return SendOutcome.failed("connect", f"{type(exc).__name__}", retriable=True)
