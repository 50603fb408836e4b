"""The notification ledger: one row per notification key in
`notifications`, one per attempt in `attempts`, a provider's message ids in `sms_messages`,
its calls in `voice_calls`, the deliver processes holding claims in `senders`.

This package is the only writer of those tables and the owner of the `State` machine:
decide admits and suppresses, deliver claims and settles, the API admits test notifications
and reopens replays, Twilio's callbacks apply late failures; all through the transitions
here, each one statement for any number of keys.
"""

from monitor.ledger.model import (
    CLAIMABLE,
    HANDOFF,
    REPLAYABLE,
    SETTLED,
    AttemptRecord,
    Claim,
    LedgerEntry,
    State,
    Verdict,
)
from monitor.ledger.provider import (
    CallUpdate,
    SmsUpdate,
    call_of,
    record_call_status,
    record_sms_status,
    sms_sids,
)
from monitor.ledger.queries import (
    attempts_for,
    by_prefix,
    count_by_channel_state,
    count_by_state,
    count_suppressed_by_reason,
    due,
    get,
    list_entries,
    next_due_at,
)
from monitor.ledger.senders import Sender, beat, retire
from monitor.ledger.transitions import (
    admit,
    claim,
    on_rescheduled,
    reopen,
    settle,
    suppress,
    undeliver,
)

__all__ = [
    "CLAIMABLE",
    "HANDOFF",
    "REPLAYABLE",
    "SETTLED",
    "AttemptRecord",
    "CallUpdate",
    "Claim",
    "LedgerEntry",
    "Sender",
    "SmsUpdate",
    "State",
    "Verdict",
    "admit",
    "attempts_for",
    "beat",
    "by_prefix",
    "call_of",
    "claim",
    "count_by_channel_state",
    "count_by_state",
    "count_suppressed_by_reason",
    "due",
    "get",
    "list_entries",
    "next_due_at",
    "on_rescheduled",
    "record_call_status",
    "record_sms_status",
    "reopen",
    "retire",
    "settle",
    "sms_sids",
    "suppress",
    "undeliver",
]
