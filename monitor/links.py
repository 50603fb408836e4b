"""Links capmon sends to people: notification detail pages and one-click unsubscribe tokens.

An unsubscribe token is the subscription id plus an HMAC-SHA256 of it under the server's
`api.link_secret`, so a token can't be guessed or forged for another subscription, and the
API can check it without a table of issued tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from pydantic import SecretStr

_PURPOSE = b"capmon-unsubscribe-v1\n"
_MAC_CHARS = 32  # 192 bits of the MAC, base64url


def _mac(secret: SecretStr, subscription_id: str) -> str:
    digest = hmac.new(secret.get_secret_value().encode("utf-8"),
                      _PURPOSE + subscription_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:_MAC_CHARS]


def unsubscribe_token(secret: SecretStr, subscription_id: str) -> str:
    return f"{subscription_id}.{_mac(secret, subscription_id)}"


def verify_unsubscribe_token(secret: SecretStr, token: str) -> str | None:
    """The subscription id the token was issued for, or None if it is not genuine."""
    subscription_id, sep, mac = token.rpartition(".")
    if not sep or not subscription_id or len(mac) != _MAC_CHARS:
        return None
    if not hmac.compare_digest(mac.encode("ascii", "replace"),
                               _mac(secret, subscription_id).encode("ascii")):
        return None
    return subscription_id


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v1/unsubscribe/{token}"


DETAIL_PREFIX_CHARS = 12


def detail_url(public_url: str, key: str) -> str:
    """A short link to a notification's detail page (fits in an SMS)."""
    return f"{public_url.rstrip('/')}/n/{key[:DETAIL_PREFIX_CHARS]}"
