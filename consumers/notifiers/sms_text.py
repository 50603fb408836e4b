"""SMS text: one GSM-7 segment (160 characters) per notification, with a link to the details.

The head is the condition's headline (monitor.wording: what, what happened, when), always
kept; then its reference, its places and its figures, in that order, while they fit. Any
character outside the GSM-7 basic set is replaced by a look-alike, because a single one (a
curly quote, a degree sign, an emoji) would switch the message to UCS-2 and 70 characters a
segment.
"""

from __future__ import annotations

from monitor.ledger.acks import ack_code
from monitor.notifications import Notification
from monitor.wording import wording

SEGMENT = 160

# GSM 03.38 basic character set (each counts 1); the extension set counts 2 but is avoided.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_LOOKALIKE = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
              "\u2014": "-", "\u2026": "...", "\u00b0": " deg", "\u00a0": " ", "\t": " ",
              "[": "(", "]": ")", "{": "(", "}": ")", "~": "-", "^": "", "|": "/", "\\": "/",
              "\u20ac": "EUR"}

_REGION_SHORT = {"Northern CA Region": "NorCal", "Southern CA Region": "SoCal",
                 "VEA Region": "VEA", "South OC San Diego Region": "S OC/SD"}
# Places beyond these are counted ("+3"); the detail link lists them all.
_PLACES = 6


def to_gsm7(text: str) -> str:
    out = []
    for ch in text:
        if ch in GSM7_BASIC:
            out.append(ch)
        else:
            out.append(_LOOKALIKE.get(ch, "?"))
    return "".join(out)


def is_single_segment(text: str) -> bool:
    return len(text) <= SEGMENT and all(ch in GSM7_BASIC for ch in text)


def render_sms(n: Notification, link: str) -> str:
    """The whole SMS: at most 160 GSM-7 characters, always ending with the link (after
    "Reply ACK <code>" when it can be acknowledged). The lead item's headline always; then its
    reference, where and figures while they fit."""
    lead = max(n.items, key=lambda i: i.condition.severity.rank)
    words = wording(lead.condition, n.decided_at)
    extras = [f"+{len(n.items) - 1} more"] if len(n.items) > 1 else []
    if words.reference:
        extras.append(words.reference)
    places = tuple(_REGION_SHORT.get(p, p) for p in words.where.places)
    if places:
        shown = ",".join(places[:_PLACES])
        extras.append(shown + (f" +{len(places) - _PLACES}" if len(places) > _PLACES else ""))
    extras += words.extras
    # An emergency says how to take it: the reply acknowledges it (monitor/ledger/acks.py).
    tail = f" Reply ACK {ack_code(n.key)} {link}" if n.acknowledgeable else f" {link}"
    budget = SEGMENT - len(tail)
    text = to_gsm7(words.headline(lead.transition))
    if len(text) > budget:  # never expected for realistic values; the tests pin that
        text = text[: budget - 3].rstrip() + "..."
    for extra in extras:
        candidate = f"{text}, {to_gsm7(extra)}"
        if len(candidate) <= budget:
            text = candidate
    return text + tail
