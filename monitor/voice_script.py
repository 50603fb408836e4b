"""What a voice call says, as TwiML built with twilio's `VoiceResponse`: the call itself, the
answers to a keypress, and the message left on an answering machine.

The words are the condition's (monitor.wording), spoken rather than abbreviated: the call
reads the lead item's headline, its reference and its places. Deliver places the call with
`call`; the API answers Twilio's keypress and answering-machine callbacks with the others,
so both take their words from here.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from monitor.notifications import Notification
from monitor.wording import wording

# Seconds Twilio waits for a key after the message has been said.
GATHER_TIMEOUT_S = 8
ACK_DIGIT, STOP_DIGIT = "1", "9"
CLOSING = "No key was pressed. The alert stands. Goodbye."
# Places beyond these are counted: a call that reads forty SubLAPs is not listened to.
_PLACES = 6


def spoken(n: Notification) -> str:
    """The alert as one spoken paragraph."""
    lead = max(n.items, key=lambda i: i.condition.severity.rank)
    words = wording(lead.condition, n.decided_at)
    parts = [f"This is a capmon grid alert for {n.subscription_name or 'your subscription'}.",
             _sentence(words.headline(lead.transition))]
    if words.reference:
        parts.append(_sentence(words.reference))
    if words.where.places:
        parts.append(_sentence(f"Areas: {words.where.text(_PLACES)}"))
    if len(n.items) > 1:
        parts.append(f"And {len(n.items) - 1} more in the same alert.")
    return " ".join(parts)


def _sentence(text: str) -> str:
    # Text to speech spells "PT" out and reads the window's en dash as a pause.
    text = text.replace(" PT", " Pacific time").replace("\u2013", " to ")
    return text if text.endswith(".") else text + "."


def prompt(n: Notification) -> str:
    ack = "Press 1 to acknowledge. " if n.acknowledgeable else ""
    return f"{ack}Press 9 to stop these calls."


def call(n: Notification, gather_url: str) -> str:
    """The call: the message said twice inside a one-digit Gather whose answer goes to
    `gather_url`, then a closing line when no key was pressed."""
    return _gathering(n, gather_url, times=2)


def again(n: Notification, gather_url: str) -> str:
    """A key other than 1 or 9: the message once more, and the keys again."""
    return _gathering(n, gather_url, times=1)


def _gathering(n: Notification, gather_url: str, *, times: int) -> str:
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=gather_url, method="POST", timeout=GATHER_TIMEOUT_S)
    text, keys = spoken(n), prompt(n)
    for i in range(times):
        gather.say(("Again. " if i else "") + text)
        gather.say(keys)
        gather.pause(length=1)
    response.append(gather)
    response.say(CLOSING)
    return str(response)


def voicemail(n: Notification) -> str:
    """An answering machine: the message once (nobody is there to press a key)."""
    response = VoiceResponse()
    response.say(spoken(n))
    response.say("This was an automated call from capmon. Goodbye.")
    response.hangup()
    return str(response)


def reply(text: str) -> str:
    """Say `text` and hang up."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)
