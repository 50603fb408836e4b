"""Links capmon sends to people: notification detail pages, one-click unsubscribe tokens and
acknowledgement tokens.

An unsubscribe token is the subscription id, the day it was issued, and an HMAC-SHA256, under
the server's `api.link_secret`, of those and the address the message was sent to: a token
can't be guessed or forged for another subscription, and after the subscription moves to a
new address (a `PUT` by its tenant) the old recipient's links no longer touch it — they would
unsubscribe, and opt out, somebody else. A token is good for `UNSUBSCRIBE_TOKEN_DAYS` after
its day, long enough for any mail somebody still reads. The API checks it against the
subscription's current address and the clock, without a table of issued tokens.

Tokens issued before they carried a day (`id.mac`, the MAC of the id and address alone) are
in mail already sent: they keep working for their address, with no expiry to check.

An acknowledgement token is the notification key, the day it was issued, and an HMAC of those
and the address the mail was sent to, under the same secret with its own purpose, so neither
kind of token passes for the other. It names no address: the API tries the addresses the
notification went to (the one decide addressed, the subscription's now) and records the one
that matches as who acknowledged. An alert is acknowledged within hours or not at all, so a
token is good for `ACK_TOKEN_DAYS` only: a week-old mail found in a forwarded thread should
not take an emergency off somebody's hands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import Enum

from pydantic import SecretStr

_UNDATED = b"capmon-unsubscribe-v2\n"
_DATED = b"capmon-unsubscribe-v3\n"
_ACK = b"capmon-ack-v1\n"
_MAC_CHARS = 32  # 192 bits of the MAC, base64url
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNSUBSCRIBE_TOKEN_DAYS = 400
ACK_TOKEN_DAYS = 7


class TokenCheck(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"  # not genuine, or not for this address


def _mac(secret: SecretStr, purpose: bytes, *fields: str) -> str:
    message = purpose + "\n".join(fields).encode("utf-8")
    digest = hmac.new(secret.get_secret_value().encode("utf-8"), message,
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:_MAC_CHARS]


def unsubscribe_token(secret: SecretStr, subscription_id: str, address: str,
                      issued: datetime) -> str:
    day = _day(issued)
    return f"{subscription_id}.{day}.{_mac(secret, _DATED, subscription_id, address.lower(), day)}"


def _parts(token: str) -> tuple[str, str | None, str] | None:
    """(subscription id, issue day or None for an undated token, MAC), or None."""
    head, sep, mac = token.rpartition(".")
    if not sep or not head or len(mac) != _MAC_CHARS:
        return None
    subscription_id, sep, day = head.rpartition(".")
    if sep and subscription_id and day.isdigit() and len(day) <= 6:
        return subscription_id, day, mac
    return head, None, mac


def token_subscription(token: str) -> str | None:
    """The subscription a token names (not yet verified), or None if it is not one."""
    parts = _parts(token)
    return parts[0] if parts else None


def check_unsubscribe_token(secret: SecretStr, token: str, address: str,
                            now: datetime) -> TokenCheck:
    """Whether the token was issued for its subscription at this address, and is still good."""
    parts = _parts(token)
    if parts is None:
        return TokenCheck.INVALID
    subscription_id, day, mac = parts
    if day is None:
        expected = _mac(secret, _UNDATED, subscription_id, address.lower())
    else:
        expected = _mac(secret, _DATED, subscription_id, address.lower(), day)
    if not hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")):
        return TokenCheck.INVALID
    if day is not None and _expired(day, UNSUBSCRIBE_TOKEN_DAYS, now):
        return TokenCheck.EXPIRED
    return TokenCheck.VALID


def _day(issued: datetime) -> str:
    return str((issued - _EPOCH).days)


def _expired(day: str, days: int, now: datetime) -> bool:
    return now > _EPOCH + timedelta(days=int(day) + 1 + days)


def ack_token(secret: SecretStr, key: str, address: str, issued: datetime) -> str:
    day = _day(issued)
    return f"{key}.{day}.{_mac(secret, _ACK, key, address.lower(), day)}"


def token_key(token: str) -> str | None:
    """The notification an acknowledgement token names (not yet verified), or None."""
    parts = _parts(token)
    if parts is None or parts[1] is None or not parts[0].isalnum():
        return None
    return parts[0]


def check_ack_token(secret: SecretStr, token: str, addresses: Iterable[str],
                    now: datetime) -> tuple[TokenCheck, str | None]:
    """Whether the token was issued for its notification to one of `addresses` and is still
    good, and that address."""
    parts = _parts(token)
    if parts is None:
        return TokenCheck.INVALID, None
    key, day, mac = parts
    if day is None:
        return TokenCheck.INVALID, None
    for address in dict.fromkeys(addresses):
        expected = _mac(secret, _ACK, key, address.lower(), day)
        if hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")):
            if _expired(day, ACK_TOKEN_DAYS, now):
                return TokenCheck.EXPIRED, None
            return TokenCheck.VALID, address
    return TokenCheck.INVALID, None


def ack_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v1/ack/{token}"


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v1/unsubscribe/{token}"


DETAIL_PREFIX_CHARS = 12


def detail_url(public_url: str, key: str) -> str:
    """A short link to a notification's detail page (fits in an SMS)."""
    return f"{public_url.rstrip('/')}/n/{key[:DETAIL_PREFIX_CHARS]}"
