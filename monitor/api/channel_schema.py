"""The `channel` of a subscription as this deployment accepts it, for the OpenAPI document.

The pydantic models (monitor.subscriptions) take more than any regular expression a request
generator can work from in reasonable time: a phone number valid anywhere in the world
(libphonenumber's plans come to some 60 KB of patterns), with spaces or dashes; any address
email-validator takes, internationalized ones included; any http(s) URL with a host name DNS
can carry. A client that generates requests from the document must not meet a refusal it
could not read there, so each request schema states a *part* of what is accepted, every value
of which is accepted, and says in its description what else is: only the channels this
deployment has configured, North American numbers of a few area codes, plain ASCII addresses
on a few public top-level domains, and webhook URLs of the scheme and hosts `webhook.*`
allow, named by DNS. A value outside a pattern is therefore not necessarily refused.

What only the network can tell stays a documented 422 (`Webhook URL refused`, reason `dns`
or `address`): a name that does not resolve, or resolves to a private or loopback address.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.channels import unconfigured
from monitor.config import Settings, WebhookSettings

# Area codes of California, each with an exchange of 2-9 then any line number: every such
# number is valid in the North American plan (tests/api/test_channel_schema.py checks all
# 800 exchanges of each).
AREA_CODES = ("213", "310", "415", "619", "714", "818", "909")
PHONE_PATTERN = f"^\\+1(?:{'|'.join(AREA_CODES)})[2-9][0-9]{{6}}$"
# Whole minutes from 1 to 59: every one is at least the PT1M a call retry needs.
CALL_RETRY_PATTERN = "^PT(?:[1-9]|[1-5][0-9])M$"
# Top-level domains none of which is special-use (RFC 6761: `test`, `local`, ...), which
# email-validator refuses.
TOP_LEVEL = ("com", "org", "net", "io", "us")
# Labels without `--`, so never punycode (`xn--`) whose IDNA decoding could fail, and short
# enough that no host or local part comes near its length limit.
_WORD = "[a-z0-9]{1,20}(?:-[a-z0-9]{1,20})?"
EMAIL_PATTERN = (f"^[a-z0-9]{{1,20}}(?:[._+][a-z0-9]{{1,20}}){{0,2}}@(?:{_WORD}\\.){{1,3}}"
                 f"(?:{'|'.join(TOP_LEVEL)})$")
_HOST_NAME = f"(?:{_WORD}\\.){{1,3}}(?:{'|'.join(TOP_LEVEL)})"
_PORT = "(?::[1-9][0-9]{0,3})?"
_REST = "(?:/[A-Za-z0-9._~-]{0,30}){0,4}(?:\\?[A-Za-z0-9._~=&-]{0,30})?"


def webhook_url_pattern(settings: WebhookSettings) -> str:
    schemes = "https?" if settings.allow_http else "https"
    hosts = [f"{schemes}://{_HOST_NAME}"]
    if settings.allow_hosts:
        listed = "|".join(_literal(f"[{h.strip('[]')}]" if ":" in h else h)
                          for h in settings.allow_hosts)
        hosts.append(f"https?://(?:{listed})")
    return f"^(?:{'|'.join(hosts)}){_PORT}{_REST}$"


def _literal(text: str) -> str:
    # `re.escape` escapes `-`, which ECMA-262's unicode mode refuses outside a class.
    return re.sub(r"([.^$*+?()[\]{}|\\/])", r"\\\1", text)


def channel_schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    """Request schemas of the configured channels, by component name."""
    hook = settings.webhook
    shortest = [len("https://a.io") - (1 if hook.allow_http else 0)]
    shortest += [len("http://") + len(h) + (2 if ":" in h else 0) for h in hook.allow_hosts]
    candidates: dict[str, tuple[str, dict[str, Any]]] = {
        "WebhookTargetRequest": ("webhook", {"url": {
            "type": "string", "minLength": min(shortest), "maxLength": 2048,
            "pattern": webhook_url_pattern(hook),
            "description": "an absolute https:// URL with a host name (with "
                           "webhook.allow_http, http:// too; hosts in webhook.allow_hosts by "
                           "either scheme), without credentials; the pattern is a part of "
                           "what is taken, which is any host name DNS can carry, any port "
                           "and any path. Refused with 422 when the name does not resolve or "
                           "resolves to a non-global address (loopback, private, "
                           "link-local...)",
            "examples": ["https://hooks.example.com/capmon"]}}),
        "SmsTargetRequest": ("sms", {"phone": {
            "type": "string", "minLength": 12, "maxLength": 12, "pattern": PHONE_PATTERN,
            "description": "E.164. The pattern is a part of what is taken, which is any "
                           "number valid in its country's numbering plan, also written with "
                           "spaces, dashes and parentheses (removed)",
            "examples": ["+14155552671"]}}),
        "VoiceTargetRequest": ("voice", {"phone": {
            "type": "string", "minLength": 12, "maxLength": 12, "pattern": PHONE_PATTERN,
            "description": "E.164, as for SMS: the pattern is a part of what is taken",
            "examples": ["+14155552671"]},
            "retries": {"type": "integer", "minimum": 0, "maximum": 5, "default": 2,
                        "description": "more calls after a busy, unanswered or failed one"},
            "retry_interval": {
                "type": "string", "pattern": CALL_RETRY_PATTERN, "default": "PT2M",
                "description": "ISO 8601 duration between those calls, at least PT1M; the "
                               "pattern (whole minutes under an hour) is a part of what is "
                               "taken"}}),
        "EmailTargetRequest": ("email", {"address": {
            "type": "string", "minLength": len("a@b.io"), "maxLength": 254,
            "pattern": EMAIL_PATTERN,
            "description": "an email address. The pattern is a part of what is taken, which "
                           "is any address on a domain that is not special-use (.test, "
                           ".local, .onion...), internationalized ones included",
            "examples": ["ops@cca.example.com"]}}),
    }
    out = {}
    for name, (kind, fields) in candidates.items():
        if unconfigured(settings, kind) is None:
            required = [f for f, schema in fields.items() if "default" not in schema]
            out[name] = {"type": "object", "additionalProperties": False,
                         "required": ["type", *required],
                         "properties": {"type": {"const": kind}, **fields}}
    return out
