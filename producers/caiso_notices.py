"""CAISO notice emails -> `caiso.eea`, `caiso.rmo`, `caiso.transmission_emergency`,
`caiso.flex_alert` and `caiso.legacy` conditions.

`parse(raw, fetched_at)` is the pure parser (`capmon parse caiso-notice`): one .eml message or
plain notice text -> the condition it declares, its status as of `fetched_at`.

`NoticeBook` is the lifecycle across notices, fed in issue order by the mailbox (and by replays):
it resolves supersessions (the 2022-09-07 20:21 EEA 2 "supersedes notice 202202705 CAISO EEA 2
Notice issued 09/07/2022 13:20" - a notice that itself carried no number), applies `ENDED:` and
cancellations, and moves conditions scheduled -> active -> ended as their windows pass (`tick`).
A superseding notice is a new revision of the condition it supersedes (the same event, its new
window), not a condition of its own: decide hears `updated`, then the all-clear at the new end.

Condition ids: `caiso.notice:<number>` (the 9-digit number, or the 2024+ 12-digit event id, whose
`-NN` messages are revisions of one condition); a notice without a number is
`caiso.notice:<type>-<issued YYYYMMDDHHMM>` (Flex Alert prose has no issue time: its start).
Revisions are ordered by issue time (`revision_at(issued_at)`), so a replay reproduces them.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage

from monitor.attributes import NoticeAttributes
from monitor.clock import PACIFIC
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from producers.caiso_common import (
    EEA_SEVERITY,
    FLEX_SEVERITY,
    LEGACY_SEVERITY,
    RMO_SEVERITY,
    TE_SEVERITY,
    decode_text,
)
from producers.caiso_notice_text import Notice, parse_notice

_MAX_BYTES = 2 * 1024 * 1024
# RFC 5322 header lines (with folded continuations) then a blank line: an .eml message.
_HEADER = re.compile(rb"^(?:[A-Za-z0-9-]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)+\r?\n")


def severity(notice: Notice) -> Severity:
    if notice.kind is Kind.CAISO_EEA:
        return EEA_SEVERITY[notice.level or "WATCH"]
    if notice.kind is Kind.CAISO_LEGACY:
        return LEGACY_SEVERITY[notice.level or "ALERT"]
    return {Kind.CAISO_RMO: RMO_SEVERITY, Kind.CAISO_FLEX_ALERT: FLEX_SEVERITY,
            Kind.CAISO_TRANSMISSION_EMERGENCY: TE_SEVERITY}[notice.kind]


def message_text(raw: bytes) -> tuple[str, str | None]:
    """The notice text of an .eml message (Subject + plain body, or HTML reduced to text), or
    of plain text; and the Message-ID when it is a message."""
    if len(raw) > _MAX_BYTES:
        raise ParseError(f"notice: {len(raw)} bytes is too large for a notice")
    if not _HEADER.match(raw[:16384]):
        return decode_text(raw, "notice"), None
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):
        raise ParseError("notice: unreadable message")
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        subject = str(msg.get("Subject", "") or "")
        message_id = msg.get("Message-ID")
    except (LookupError, ValueError, TypeError, AttributeError) as exc:
        raise ParseError(f"notice: unreadable message: {type(exc).__name__}") from None
    if not isinstance(body, str):
        raise ParseError("notice: message has no text body")
    if part is not None and part.get_content_subtype() == "html":
        body = html.unescape(re.sub(r"<[^>]+>", "\n", body))
    return f"{subject}\n{body}", str(message_id).strip() if message_id else None


def status_at(notice_start: datetime | None, end: datetime | None, now: datetime) -> Status:
    if notice_start is not None and now < notice_start:
        return Status.SCHEDULED
    if end is not None and now >= end:
        return Status.ENDED
    return Status.ACTIVE


def own_id(notice: Notice) -> str:
    if notice.number:
        return f"caiso.notice:{notice.number}"
    anchor = notice.issued_at or notice.start
    stamp = anchor.astimezone(PACIFIC).strftime("%Y%m%d%H%M") if anchor else "unknown"
    return f"caiso.notice:{notice.type_key}-{stamp}"


def to_condition(notice: Notice, condition_id: str, fetched_at: datetime,
                 source_url: str | None = None) -> Condition:
    start, end = notice.start, notice.end
    status = status_at(start, end, fetched_at)
    if notice.ended:
        status = Status.ENDED
    if notice.cancelled_at is not None:
        if start is not None and notice.cancelled_at <= start:
            status = Status.CANCELLED
        else:
            status, end = Status.ENDED, notice.cancelled_at
    anchor = notice.issued_at or fetched_at
    return Condition(
        id=condition_id, kind=notice.kind, severity=severity(notice), status=status,
        window=Window(start=start, end=end), regions=notice.regions,
        attributes=NoticeAttributes(
            notice_no=notice.number, level=notice.level, step=notice.step, title=notice.title,
            reason=notice.reason, issued_at=notice.issued_at, supersedes=notice.supersedes,
            channel="email"),
        revision=revision_at(anchor), observed_at=fetched_at, source_url=source_url)


def parse(raw: bytes, fetched_at: datetime) -> list[Condition]:
    """One notice -> its condition. A superseding notice is filed under the number it
    supersedes (the book does better when it knows the superseded notice's own id)."""
    text, _ = message_text(raw)
    notice = parse_notice(text)
    cid = f"caiso.notice:{notice.supersedes[0]}" if notice.supersedes else own_id(notice)
    return [to_condition(notice, cid, fetched_at)]


class NoticeBook:
    """The notices seen so far and the conditions they make, in issue order."""

    def __init__(self) -> None:
        self._conditions: dict[str, Condition] = {}
        self._aliases: dict[str, str] = {}

    def get(self, condition_id: str) -> Condition | None:
        return self._conditions.get(condition_id)

    def copy(self) -> NoticeBook:
        book = NoticeBook()
        book._conditions = dict(self._conditions)
        book._aliases = dict(self._aliases)
        return book

    def open_conditions(self) -> list[Condition]:
        return [c for c in self._conditions.values() if c.status.is_open]

    def _alias_keys(self, notice: Notice) -> list[str]:
        keys = []
        if notice.number:
            keys.append(f"no:{notice.number}")
        if notice.issued_at is not None:
            keys.append(f"at:{notice.type_key}:{notice.issued_at.isoformat()}")
        return keys

    def _target(self, notice: Notice) -> str:
        if notice.supersedes:
            number = notice.supersedes[0]
            if (cid := self._aliases.get(f"no:{number}")) is not None:
                return cid
            if notice.supersedes_issued_at is not None:
                # A numberless notice is known by its type and issue time, which the
                # superseding text repeats ("... CAISO EEA 2 Notice issued 09/07/2022 13:20").
                key = f"at:{notice.type_key}:{notice.supersedes_issued_at.isoformat()}"
                if (cid := self._aliases.get(key)) is not None:
                    return cid
            return f"caiso.notice:{number}"
        return own_id(notice)

    def apply(self, notice: Notice, now: datetime, source_url: str | None = None
              ) -> list[Condition]:
        """File one notice; the revisions it causes (none if it changes nothing)."""
        cid = self._target(notice)
        previous = self._conditions.get(cid)
        if previous is not None and isinstance(previous.attributes, NoticeAttributes):
            prev = previous.attributes
            if notice.ended and notice.start is None:
                notice = replace(notice, start=previous.window.start)
            # An ENDED: or superseding message does not repeat the reason or number.
            notice = replace(
                notice, reason=notice.reason or prev.reason,
                number=notice.number or prev.notice_no,
                supersedes=tuple(dict.fromkeys((*prev.supersedes, *notice.supersedes))))
        condition = to_condition(notice, cid, now, source_url)
        for key in self._alias_keys(notice):
            self._aliases.setdefault(key, cid)
        self._aliases.setdefault(f"id:{cid}", cid)
        return self._store(condition, previous)

    def next_change(self, now: datetime) -> datetime | None:
        """The next window start or end after `now` of an open notice: when `tick` has work."""
        times = [t for c in self._conditions.values() if c.status.is_open
                 for t in (c.window.start, c.window.end) if t is not None and t > now]
        return min(times, default=None)

    def tick(self, now: datetime) -> list[Condition]:
        """Status changes due to the passing of time (scheduled -> active -> ended)."""
        out: list[Condition] = []
        for c in list(self._conditions.values()):
            if not c.status.is_open:
                continue
            status = status_at(c.window.start, c.window.end, now)
            if status is c.status:
                continue
            moment = c.window.start if status is Status.ACTIVE else c.window.end
            updated = c.model_copy(update={
                "status": status, "observed_at": now,
                "revision": max(revision_at(moment or now), c.revision + 1)})
            out.extend(self._store(updated, c))
        return out

    def _store(self, condition: Condition, previous: Condition | None) -> list[Condition]:
        if previous is not None:
            if previous.content_hash() == condition.content_hash():
                return []
            if condition.revision <= previous.revision:
                condition = condition.model_copy(update={"revision": previous.revision + 1})
        self._conditions[condition.id] = condition
        return [condition]

