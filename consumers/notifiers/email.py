"""Email channel: multipart plain + HTML over SMTP (aiosmtplib), STARTTLS or implicit TLS.

Headers that matter: a deterministic `Message-ID` (the notification key, so a retry after an
ambiguous failure is recognisably the same mail), `Auto-Submitted: auto-generated` (no
auto-replies), and RFC 8058 one-click unsubscribe (`List-Unsubscribe` with an HMAC token, and
`List-Unsubscribe-Post`). An acknowledgeable notification's mail carries a signed "I have it"
link to the acknowledgement page, bound to its key and to the address it went to. SMTP 4xx
is retried; 5xx is permanent, and a refused recipient marks the contact invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import SecretStr

from consumers.notifiers.base import Delivery, EndpointAction, SendOutcome
from monitor.clock import Clock
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.links import ack_token, ack_url, detail_url, unsubscribe_token, unsubscribe_url
from monitor.notifications import Notification, NotificationItem
from monitor.source_health import source_label
from monitor.store.endpoints import Endpoint
from monitor.wording import long_day, pacific, wording

_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                         autoescape=select_autoescape(["html", "html.j2"]),
                         undefined=StrictUndefined, keep_trailing_newline=True)


@dataclass(frozen=True, repr=False)
class EmailConfig:
    host: str
    port: int
    sender: str
    public_url: str
    link_secret: SecretStr
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout_s: float = 30.0

    def __repr__(self) -> str:
        return f"EmailConfig(host={self.host!r}, port={self.port}, password=**********)"

    @property
    def domain(self) -> str:
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "capmon.invalid"

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailConfig:
        s = settings.smtp
        if settings.api.link_secret is None:
            raise ConfigError("the email channel needs api.link_secret (CAPMON_API_LINK_SECRET) "
                              "to sign unsubscribe and acknowledgement links")
        return cls(host=s.host, port=s.port, sender=s.sender, public_url=settings.api.public_url,
                   link_secret=settings.api.link_secret, username=s.username,
                   password=s.password, starttls=s.starttls, use_tls=s.use_tls,
                   timeout_s=s.timeout_s)


def _value(key: str, v: object) -> str:
    """An attribute as a reader of the mail reads it: times in Pacific like the rest."""
    if isinstance(v, datetime):
        return pacific(v)
    if isinstance(v, date):
        return long_day(v)
    if key in ("source", "current", "not_current"):
        names = v if isinstance(v, list | tuple) else [v]
        return ", ".join(source_label(str(n)) for n in names)
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    return str(v)


def _item_view(item: NotificationItem, now: datetime) -> dict[str, Any]:
    c = item.condition
    words = wording(c, now)
    attrs = c.attributes.model_dump(mode="python", exclude_none=True)
    facts = [(k.replace("_", " ").capitalize(), _value(k, v)) for k, v in attrs.items()
             if v not in ((), [], "")]
    return {"title": words.headline(item.transition), "condition_id": c.id,
            "severity": c.severity.value, "status": c.status.value, "window": words.when.long(),
            "regions": words.where.text(), "reference": words.reference,
            "also": "; ".join(words.extras), "facts": facts, "source_url": c.source_url}


def build_message(n: Notification, to: str, config: EmailConfig, clock: Clock) -> EmailMessage:
    now = clock.now()
    token = unsubscribe_token(config.link_secret, n.subscription_id, to, now)
    ack = ack_url(config.public_url, ack_token(config.link_secret, n.key, to, now)) \
        if n.acknowledgeable else None
    view = {"summary": n.summary, "items": [_item_view(i, n.decided_at) for i in n.items],
            "key": n.key, "subscription_name": n.subscription_name or n.subscription_id,
            "detail_url": detail_url(config.public_url, n.key), "ack_url": ack,
            "unsubscribe_url": unsubscribe_url(config.public_url, token)}
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = Address(addr_spec=to)
    subject = f"[capmon] {n.summary}"
    msg["Subject"] = subject if len(subject) <= 160 else subject[:157] + "..."
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{n.key}@{config.domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Capmon-Notification-Key"] = n.key
    msg["List-Unsubscribe"] = f"<{view['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(_TEMPLATES.get_template("email.txt.j2").render(view))
    msg.add_alternative(_TEMPLATES.get_template("email.html.j2").render(view), subtype="html")
    return msg


class EmailNotifier:
    channel = "email"

    def __init__(self, config: EmailConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock

    async def start(self) -> None:
        """Nothing to open: one SMTP session per message keeps failures independent."""

    async def close(self) -> None:
        """Nothing held open between messages."""

    async def send(self, delivery: Delivery) -> SendOutcome:
        try:
            msg = build_message(delivery.notification, delivery.endpoint.target, self.config,
                                self._clock)
        except (ValueError, IndexError) as exc:  # an address the email package rejects
            return SendOutcome.failed("invalid_contact", f"bad address: {type(exc).__name__}",
                                      retriable=False, action=EndpointAction.INVALID_CONTACT)
        return await self._submit(msg)

    async def send_endpoint_disabled(self, to: str, endpoint: Endpoint,
                                     why: str) -> SendOutcome | None:
        """A plain operational mail to the tenant's admin contact (deliver announces disabled
        webhook endpoints)."""
        ep = endpoint
        text = (f"capmon disabled the webhook endpoint of your subscription \"{ep.name}\" "
                f"({ep.subscription_id}).\n\nReason: {why}\nURL: {ep.target}\n\n"
                "No further notifications are sent to it. Fix the receiver, then set the "
                "subscription's status back to active; failed notifications can be replayed "
                "with POST /v1/notifications/{key}/replay.\n")
        return await self._notice(to, f"[capmon] Webhook endpoint disabled: {ep.name}", text)

    async def _notice(self, to: str, subject: str, text: str) -> SendOutcome:
        msg = EmailMessage()
        msg["From"] = self.config.sender
        try:
            msg["To"] = Address(addr_spec=to)
        except (ValueError, IndexError) as exc:
            return SendOutcome.failed("invalid_contact", f"bad address: {type(exc).__name__}",
                                      retriable=False)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self._clock.now())
        msg["Message-ID"] = make_msgid(domain=self.config.domain)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        return await self._submit(msg)

    async def _submit(self, msg: EmailMessage) -> SendOutcome:
        cfg = self.config
        try:
            _errors, reply = await aiosmtplib.send(
                msg, hostname=cfg.host, port=cfg.port, username=cfg.username,
                password=cfg.password.get_secret_value() if cfg.password else None,
                start_tls=cfg.starttls, use_tls=cfg.use_tls, timeout=cfg.timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return _from_code(first.code, first.message, recipient=True)
        except aiosmtplib.SMTPAuthenticationError as exc:
            return SendOutcome.failed("auth", f"SMTP {exc.code} authentication failed",
                                      retriable=True, status_code=exc.code)
        except aiosmtplib.SMTPResponseException as exc:
            return _from_code(exc.code, exc.message, recipient=False)
        except aiosmtplib.SMTPTimeoutError:
            return SendOutcome.failed("timeout", "SMTP server did not answer in time",
                                      retriable=True)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendOutcome.failed("connect", f"SMTP: {type(exc).__name__}", retriable=True)
        return SendOutcome.delivered(status_code=250, provider_id=str(msg["Message-ID"]),
                                     detail=reply[:200])


def _from_code(code: int, message: str, *, recipient: bool) -> SendOutcome:
    detail = f"SMTP {code} {message.strip()[:200]}"
    if 400 <= code < 500:
        return SendOutcome.failed("server", detail, retriable=True, status_code=code)
    action = EndpointAction.INVALID_CONTACT if recipient else EndpointAction.NONE
    reason = "invalid_contact" if recipient else "client"
    return SendOutcome.failed(reason, detail, retriable=False, status_code=code, action=action)
