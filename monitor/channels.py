"""Whether a delivery channel is configured, and if not, what to set.

One rule for the API and the CLI (which refuse a subscription to a channel that cannot send)
and for deliver (which starts only the configured notifiers): a subscription accepted for an
unconfigured channel would retry forever with "channel ... is not configured".
"""

from __future__ import annotations

from monitor.config import Settings


def unconfigured(settings: Settings, channel: str) -> str | None:
    """None if `channel` can send with these settings, else what to configure, in words."""
    if channel == "email" and settings.api.link_secret is None:
        return ("the email channel is not configured: set CAPMON_API_LINK_SECRET (it signs "
                "the one-click unsubscribe link every email carries; keep it stable) and "
                "CAPMON_SMTP_HOST/_PORT/_SENDER for your mail relay")
    if channel == "sms":
        t = settings.twilio
        missing = [name for name, value in (
            ("CAPMON_TWILIO_ACCOUNT_SID", t.account_sid), ("CAPMON_TWILIO_AUTH_TOKEN",
                                                           t.auth_token),
            ("CAPMON_TWILIO_MESSAGING_SERVICE_SID or CAPMON_TWILIO_FROM_NUMBER",
             t.messaging_service_sid or t.from_number)) if not value]
        if missing:
            return f"the SMS channel is not configured: set {', '.join(missing)}"
    if channel == "voice":
        t = settings.twilio
        # A call is placed from a number (a Messaging Service carries texts only), and Twilio
        # fetches its keypresses and reports its outcome at the API's public URL.
        missing = [name for name, value in (
            ("CAPMON_TWILIO_ACCOUNT_SID", t.account_sid), ("CAPMON_TWILIO_AUTH_TOKEN",
                                                           t.auth_token),
            ("CAPMON_TWILIO_FROM_NUMBER", t.from_number),
            ("CAPMON_API_PUBLIC_URL", settings.api.public_url)) if not value]
        if missing:
            return f"the voice channel is not configured: set {', '.join(missing)}"
    return None
