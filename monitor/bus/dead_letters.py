"""Dead letters: records a consumer gave up on, kept with where they came from and why.

A dead letter is the original record, byte for byte (it may be the very thing that could not
be decoded), with `capmon-dlq-*` headers added. Replaying one publishes the original record
again onto the topic it came from; consumers are idempotent, so a replay of something that
was handled meanwhile changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.bus.base import Bus, Message
from monitor.envelope import Record

_PREFIX = "capmon-dlq-"
TOPIC, PARTITION, OFFSET, GROUP = (f"{_PREFIX}{n}" for n in ("topic", "partition", "offset",
                                                             "group"))
ERROR, ATTEMPTS, AT = (f"{_PREFIX}{n}" for n in ("error", "attempts", "at"))


def dead_letter(message: Message, group: str, error: BaseException, attempts: int,
                now: datetime) -> Record:
    text = f"{type(error).__name__}: {error}"[:2000]
    added = ((TOPIC, message.topic), (PARTITION, str(message.partition)),
             (OFFSET, str(message.offset)), (GROUP, group), (ERROR, text),
             (ATTEMPTS, str(attempts)), (AT, now.isoformat()))
    own = tuple(h for h in message.record.headers if not h[0].startswith(_PREFIX))
    return Record(key=message.key, value=message.record.value,
                  headers=own + tuple((k, v.encode("utf-8")) for k, v in added))


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead letter topic, read back."""

    position: str          # "partition:offset" in the dead letter topic
    key: str
    origin: str | None     # "topic/partition/offset" it came from (None: not a dead letter)
    group: str | None
    error: str | None
    attempts: int | None
    at: str | None
    record: Record

    @property
    def topic(self) -> str | None:
        return self.origin.split("/")[0] if self.origin else None

    def original(self) -> Record:
        return Record(key=self.record.key, value=self.record.value,
                      headers=tuple(h for h in self.record.headers
                                    if not h[0].startswith(_PREFIX)))


def read_back(message: Message) -> DeadLetter:
    h = {k: v.decode("utf-8", "replace") for k, v in message.record.headers
         if k.startswith(_PREFIX)}
    origin = (f"{h[TOPIC]}/{h.get(PARTITION, '?')}/{h.get(OFFSET, '?')}" if TOPIC in h
              else None)
    attempts = h.get(ATTEMPTS)
    return DeadLetter(position=f"{message.partition}:{message.offset}", key=message.key,
                      origin=origin, group=h.get(GROUP), error=h.get(ERROR),
                      attempts=int(attempts) if attempts and attempts.isdigit() else None,
                      at=h.get(AT), record=message.record)


async def list_dead_letters(bus: Bus, topic: str) -> list[DeadLetter]:
    return [read_back(m) for m in await bus.read_topic(topic)]


async def replay(bus: Bus, letters: Sequence[DeadLetter]) -> int:
    """Publish each letter's original record onto its topic again; how many were replayed
    (letters that name no topic are not this runner's and are left alone)."""
    count = 0
    for letter in letters:
        if letter.topic is not None:
            await bus.publish_records(letter.topic, [letter.original()])
            count += 1
    return count
