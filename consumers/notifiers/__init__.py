"""One notifier per channel (webhook, SMS, voice, email) behind one protocol;
`build_notifiers` wires them from settings."""

from __future__ import annotations

import structlog

from consumers.notifiers.base import Delivery, EndpointAction, Notifier, SendOutcome
from consumers.notifiers.email import EmailConfig, EmailNotifier
from consumers.notifiers.sms import SmsConfig, SmsNotifier
from consumers.notifiers.voice import VoiceConfig, VoiceNotifier
from consumers.notifiers.webhook import WebhookConfig, WebhookNotifier
from monitor.channels import unconfigured
from monitor.clock import Clock
from monitor.config import Settings

log = structlog.get_logger(__name__)


def build_notifiers(settings: Settings, clock: Clock) -> dict[str, Notifier]:
    """Every channel the settings make possible, by channel name.

    A channel that isn't configured (monitor.channels: the API and CLI refuse subscriptions
    to it) is left out and logged with what to set: notifications for it that exist anyway
    wait on the retry schedule (a configuration fix resumes them) instead of being dropped.
    """
    notifiers: dict[str, Notifier] = {
        "webhook": WebhookNotifier(WebhookConfig.from_settings(settings), clock)}
    why = unconfigured(settings, "sms")
    sms = SmsConfig.from_settings(settings) if why is None else None
    if sms is None:
        log.warning("channel_not_configured", channel="sms", missing=why)
    else:
        notifiers["sms"] = SmsNotifier(sms)
    why = unconfigured(settings, "voice")
    voice = VoiceConfig.from_settings(settings) if why is None else None
    if voice is None:
        log.warning("channel_not_configured", channel="voice", missing=why)
    else:
        notifiers["voice"] = VoiceNotifier(voice)
    if (why := unconfigured(settings, "email")) is not None:
        log.warning("channel_not_configured", channel="email", missing=why)
    else:
        notifiers["email"] = EmailNotifier(EmailConfig.from_settings(settings), clock)
    return notifiers


__all__ = ["Delivery", "EndpointAction", "Notifier", "SendOutcome", "build_notifiers"]
