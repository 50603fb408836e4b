"""One notifier per channel behind one protocol; `build_notifiers` wires them from settings."""

from __future__ import annotations

import structlog

from consumers.notifiers.base import Delivery, EndpointAction, Notifier, Outcome
from consumers.notifiers.email import EmailConfig, EmailNotifier
from consumers.notifiers.sms import SmsConfig, SmsNotifier
from consumers.notifiers.webhook import WebhookConfig, WebhookNotifier
from monitor.clock import Clock
from monitor.config import Settings
from monitor.errors import ConfigError

log = structlog.get_logger(__name__)


def build_notifiers(settings: Settings, clock: Clock) -> dict[str, Notifier]:
    """Every channel the settings make possible, by channel name.

    A channel that isn't configured is left out and logged: its notifications wait on the
    retry schedule (a configuration fix resumes them) instead of being dropped.
    """
    notifiers: dict[str, Notifier] = {
        "webhook": WebhookNotifier(WebhookConfig.from_settings(settings), clock)}
    try:
        sms = SmsConfig.from_settings(settings)
        if sms is None:
            log.warning("channel_not_configured", channel="sms",
                        missing="twilio.account_sid and twilio.auth_token")
        else:
            notifiers["sms"] = SmsNotifier(sms)
    except ConfigError as exc:
        log.error("channel_not_configured", channel="sms", error=str(exc))
    try:
        notifiers["email"] = EmailNotifier(EmailConfig.from_settings(settings), clock)
    except ConfigError as exc:
        log.warning("channel_not_configured", channel="email", error=str(exc))
    return notifiers


__all__ = ["Delivery", "EndpointAction", "Notifier", "Outcome", "build_notifiers"]
