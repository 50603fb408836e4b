"""One notifier per channel (webhook, SMS, voice, email) behind one protocol;
`build_notifiers` wires them from settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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
C = TypeVar("C")


def build_notifiers(settings: Settings, clock: Clock) -> dict[str, Notifier]:
    """Every channel the settings make possible, by channel name.

    A channel that isn't configured (monitor.channels: the API and CLI refuse subscriptions
    to it) is left out and logged with what to set: notifications for it that exist anyway
    wait on the retry schedule (a configuration fix resumes them) instead of being dropped.
    """
    notifiers: dict[str, Notifier] = {
        "webhook": WebhookNotifier(WebhookConfig.from_settings(settings), clock)}
    if (sms := _configured(settings, "sms", SmsConfig.from_settings)) is not None:
        notifiers["sms"] = SmsNotifier(sms)
    if (voice := _configured(settings, "voice", VoiceConfig.from_settings)) is not None:
        notifiers["voice"] = VoiceNotifier(voice)
    if (email := _configured(settings, "email", EmailConfig.from_settings)) is not None:
        notifiers["email"] = EmailNotifier(email, clock)
    return notifiers


def _configured(settings: Settings, channel: str,
                config_of: Callable[[Settings], C | None]) -> C | None:
    """The channel's config, read only when it is configured; None (logged) when not."""
    why = unconfigured(settings, channel)
    config = config_of(settings) if why is None else None
    if config is None:
        log.warning("channel_not_configured", channel=channel, missing=why)
    return config


__all__ = ["Delivery", "EndpointAction", "Notifier", "SendOutcome", "build_notifiers"]
