"""Small helpers shared by the producer tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from monitor.bus import Bus, MemoryBus
from monitor.envelope import condition_from_event
from monitor.errors import BusError
from monitor.events import Condition
from monitor.topics import CAISO

CAISO_FIXTURES = Path(__file__).parent.parent / "fixtures" / "caiso"

# demand.csv: no real full-day capture exists, so full days are constructed (labelled so).
NEW = "Time,Day ahead forecast,Hour ahead forecast,Current demand,Demand response\n"
OLD = "Time,Day ahead forecast,Hour ahead forecast,Current demand\n"


def demand_file(header: str, rows: list[str]) -> bytes:
    return (header + "".join(r + "\n" for r in rows) + ",,,,\n").encode()


def full_day(known_until: int, dst: str | None = None) -> list[str]:
    """A synthetic day: the 289 rows `00:00, 00:05 ... 23:55, 00:00`, each label the end of its
    interval. The hourly forecasts change at HH:05 (30000 + hour ending); the opening `00:00`
    carries the previous day's HE24 (31000, and a current demand of 29999 above any of this
    day's). Current demand is 20000 + minutes since midnight, known up to `known_until`."""
    rows = []
    for minute in range(0, 24 * 60 + 5, 5):
        label = f"{minute // 60 % 24:02d}:{minute % 60:02d}"
        if dst == "spring" and label.startswith("02:"):
            rows.append(f"{label},,,,")
            continue
        he = -(-minute // 60)
        da, ha = (31000, 30000) if minute == 0 else (30000 + he, 29000 + he)
        current = 29999 if minute == 0 else (20000 + minute if minute <= known_until else "")
        rows.append(f"{label},{da},{ha},{current},")
    return rows


async def drain(bus: Bus, topic: str, timeout: float = 0.05) -> list[Condition]:
    """Every condition on `topic` so far, in publish order per key (a fresh group)."""
    sub = bus.subscribe([topic], group=f"drain-{uuid.uuid4().hex}")
    out = []
    while (msg := await sub.get(timeout=timeout)) is not None:
        out.append(condition_from_event(msg.event()))
    await sub.close()
    return out


class DownOnceBus(MemoryBus):
    """A broker that refuses the first publish to `topic`, then is back."""

    def __init__(self, topic: str = CAISO) -> None:
        super().__init__()
        self.topic = topic
        self.down = True

    async def publish(self, topic: str, key: str, event: Any) -> None:
        if topic == self.topic and self.down:
            self.down = False
            raise BusError("broker unavailable", reason="connect", retriable=True)
        await super().publish(topic, key, event)
