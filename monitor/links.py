"""Links capmon sends to people: notification detail pages and one-click unsubscribe tokens.

An unsubscribe token is the subscription id plus an HMAC-SHA256, under the server's
`api.link_secret`, of that id and the address the message was sent to: a token can't be
guessed or forged for another subscription, and after the subscription moves to a new address
(a `PUT` by its tenant) the old recipient's links no longer touch it — they would unsubscribe,
and opt out, somebody else. The API checks it against the subscription's current address,
without a table of issued tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from pydantic import SecretStr

_PURPOSE = b"capmon-unsubscribe-v2\n"
_MAC_CHARS = 32  # 192 bits of the MAC, base64url


def _mac(secret: SecretStr, subscription_id: str, address: str) -> str:
    message = _PURPOSE + subscription_id.encode("utf-8") + b"\n" + address.lower().encode("utf-8")
    digest = hmac.new(secret.get_secret_value().encode("utf-8"), message,
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:_MAC_CHARS]


def unsubscribe_token(secret: SecretStr, subscription_id: str, address: str) -> str:
    return f"{subscription_id}.{_mac(secret, subscription_id, address)}"


def token_subscription(token: str) -> str | None:
    """The subscription a token names (not yet verified), or None if it is not one."""
    subscription_id, sep, mac = token.rpartition(".")
    if not sep or not subscription_id or len(mac) != _MAC_CHARS:
        return None
    return subscription_id


def verify_unsubscribe_token(secret: SecretStr, token: str, address: str) -> bool:
    """Whether the token was issued for its subscription at this address."""
    subscription_id = token_subscription(token)
    if subscription_id is None:
        return False
    return hmac.compare_digest(token.rpartition(".")[2].encode("ascii", "replace"),
                               _mac(secret, subscription_id, address).encode("ascii"))


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v1/unsubscribe/{token}"


DETAIL_PREFIX_CHARS = 12


def detail_url(public_url: str, key: str) -> str:
    """A short link to a notification's detail page (fits in an SMS)."""
    return f"{public_url.rstrip('/')}/n/{key[:DETAIL_PREFIX_CHARS]}"
