"""The notifiers deliver starts: every channel the settings make possible, and a warning that
names what to set for each one they do not."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from pydantic import SecretStr

from consumers.notifiers import build_notifiers
from consumers.notifiers.sms import SmsNotifier
from consumers.notifiers.voice import VoiceNotifier
from monitor.clock import ManualClock
from monitor.config import ApiSettings, Settings, TwilioSettings
from tests.deliver.conftest import LINK_SECRET, PUBLIC_URL

CLOCK = ManualClock(datetime(2022, 9, 6, 17, 26, tzinfo=UTC))


def test_without_settings_only_the_webhook_runs_and_the_rest_say_what_to_set() -> None:
    with structlog.testing.capture_logs() as logs:
        notifiers = build_notifiers(Settings(), CLOCK)
    assert set(notifiers) == {"webhook"}
    missing = {e["channel"]: e["missing"] for e in logs
               if e["event"] == "channel_not_configured"}
    assert set(missing) == {"sms", "voice", "email"}
    assert "CAPMON_TWILIO_AUTH_TOKEN" in missing["sms"]
    assert "CAPMON_TWILIO_FROM_NUMBER" in missing["voice"]
    assert "CAPMON_API_LINK_SECRET" in missing["email"]


def test_a_messaging_service_sends_texts_but_places_no_calls() -> None:
    settings = Settings(twilio=TwilioSettings(account_sid="AC" + "1" * 32,
                                              auth_token=SecretStr("t"),
                                              messaging_service_sid="MG" + "2" * 32))
    with structlog.testing.capture_logs() as logs:
        notifiers = build_notifiers(settings, CLOCK)
    assert set(notifiers) == {"webhook", "sms"}
    sms = notifiers["sms"]
    assert isinstance(sms, SmsNotifier)
    assert sms.config.messaging_service_sid == "MG" + "2" * 32
    assert {e["channel"] for e in logs if e["event"] == "channel_not_configured"} == \
        {"voice", "email"}


def test_a_number_a_public_url_and_a_link_secret_make_every_channel() -> None:
    settings = Settings(api=ApiSettings(public_url=PUBLIC_URL, link_secret=LINK_SECRET),
                        twilio=TwilioSettings(account_sid="AC" + "1" * 32,
                                              auth_token=SecretStr("t"),
                                              from_number="+15005550006"))
    with structlog.testing.capture_logs() as logs:
        notifiers = build_notifiers(settings, CLOCK)
    assert set(notifiers) == {"webhook", "sms", "voice", "email"}
    voice = notifiers["voice"]
    assert isinstance(voice, VoiceNotifier)
    assert voice.config.from_number == "+15005550006"
    assert voice.config.public_url == PUBLIC_URL
    assert not [e for e in logs if e["event"] == "channel_not_configured"]
