"""The `channel` of a subscription as this deployment accepts it, for the OpenAPI document.

The pydantic models (monitor.subscriptions) take more than the canonical form: a phone number
with spaces or dashes (stored as E.164), any address email-validator takes, any http(s) URL
for the SSRF guard to judge afterwards. A client that generates requests from the document
must not meet a refusal it could not read there, so the request schema states the canonical
form, every value of which is accepted: only the channels this deployment has configured,
E.164 numbers valid in their country's numbering plan, dot-atom addresses on a public
domain, and webhook URLs of the scheme and hosts `webhook.*` allow, named by DNS.

What only the network can tell stays a documented 422 (`Webhook URL refused`, reason `dns`
or `address`): a name that does not resolve, or resolves to a private or loopback address.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from monitor.channels import unconfigured
from monitor.config import Settings, WebhookSettings

# Every number type libphonenumber calls valid (`is_valid_number`): any but UNKNOWN.
_NUMBER_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
                 "personal_number", "voip", "pager", "uan", "voicemail")
# email-validator refuses these as special-use (RFC 6761 and the like), whatever the rest.
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A label that is not punycode (`xn--`): its IDNA decoding could fail.
_ASCII_LABEL = "[A-Za-z0-9]{1,63}(?:-[A-Za-z0-9]{1,62})*"
EMAIL_PATTERN = (
    f"^(?=[^@]{{1,64}}@)(?=.{{1,254}}$){_ATOM}(?:\\.{_ATOM})*@"
    f"(?=[^@]{{1,253}}$)(?:(?=[^.]{{1,63}}\\.){_ASCII_LABEL}\\.)+"
    f"(?!(?:{'|'.join(_SPECIAL_USE)})$)(?=[^.]{{2,63}}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
# A host name (not an IP literal: its last label starts with a letter), at most 253
# characters, then a port in 1-65535, then a path, query or fragment of printable ASCII.
_HOST_NAME = (f"(?=[^/?#:]{{1,253}}(?:[/?#:]|$))(?:{_LABEL}\\.)+"
              "[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = ("(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
         "|6553[0-5]))?")
_REST = "(?:[/?#][!-~]*)?"


@functools.cache
def phone_pattern() -> str:
    """E.164 numbers `is_valid_number` takes: `+`, a country code, then a national number of
    a type its regions define, from the same metadata the validator reads."""
    countries = []
    for code, regions in sorted(COUNTRY_CODE_TO_REGION_CODE.items()):
        patterns: set[str] = set()
        for region in regions:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            for kind in _NUMBER_TYPES if meta is not None else ():
                desc = getattr(meta, kind)
                if desc is not None and desc.national_number_pattern:
                    patterns.add(desc.national_number_pattern)
        if patterns:
            countries.append(f"{code}(?:{'|'.join(sorted(patterns))})")
    # JSON Schema patterns are ECMA-262, where `\d` is ASCII already; in Python it is not.
    return "^\\+(?:" + "|".join(countries).replace("\\d", "[0-9]") + ")$"


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
    candidates: dict[str, tuple[str, dict[str, Any]]] = {
        "WebhookTargetRequest": ("webhook", {"url": {
            "type": "string", "minLength": len("https://a.b"), "maxLength": 2048,
            "pattern": webhook_url_pattern(settings.webhook),
            "description": "https:// and a host name (hosts in webhook.allow_hosts and, "
                           "with webhook.allow_http, http:// too); refused with 422 when "
                           "the name does not resolve or resolves to a non-global address"
                           " (loopback, private, link-local...)",
            "examples": ["https://hooks.example.com/capmon"]}}),
        "SmsTargetRequest": ("sms", {"phone": {
            "type": "string", "pattern": phone_pattern(),
            "description": "E.164, valid in its country's numbering plan (spaces, dashes and "
                           "parentheses are also taken, and removed)",
            "examples": ["+14155552671"]}}),
        "EmailTargetRequest": ("email", {"address": {
            "type": "string", "format": "email", "minLength": len("a@b.cd"),
            "maxLength": 254,
            "pattern": EMAIL_PATTERN,
            "description": "an address on a public domain (internationalized addresses "
                           "are also taken)",
            "examples": ["ops@cca.example.com"]}}),
    }
    out = {}
    for name, (kind, fields) in candidates.items():
        if unconfigured(settings, kind) is None:
            out[name] = {"type": "object", "additionalProperties": False,
                         "required": ["type", *fields],
                         "properties": {"type": {"const": kind}, **fields}}
    return out
